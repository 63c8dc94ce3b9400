"""The Settings panel's keyring side: which backend holds the keys and whether each is
stored (never a secret), storing keys, and the write-only key fields. Every keyring call
is a D-Bus round trip (the first also probes the backends, ~0.3 s): they run on one
thread of their own, never on the GUI thread, one at a time in the order asked, so a
status read after a save sees what the save stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtWidgets import QLineEdit, QWidget

from desktop.layouts import line_edit

T = TypeVar("T")

_KEYRING_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyring")


@dataclass(frozen=True)
class KeyringView:
    """What the panel shows of the keyring: never a secret, only whether one is there."""

    usable: bool
    backend: str
    service: str
    stored: dict[str, bool]


def read_keyring() -> KeyringView:
    from runtime import secrets

    statuses = [secrets.status(name) for name in ("openai", "temporal")]
    first = statuses[0]
    return KeyringView(
        first.usable, first.backend, first.service, {s.name: s.stored for s in statuses}
    )


def store_keys(keys: dict[str, str], endpoint: str | None = None) -> str:
    """Store every key (the model key for `endpoint` only); the backend that holds them.
    SecretsError with the reason."""
    from runtime import secrets

    if not secrets.usable():
        raise secrets.SecretsError("cannot store the key: " + secrets.no_backend_message())
    held_by = ""
    for name, value in keys.items():
        held_by = secrets.set_secret(name, value, endpoint=endpoint)
    return held_by


async def in_keyring_thread(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_KEYRING_THREAD, call, *args)


def secret_edit(parent: QWidget, name: str, what: str = "a key") -> QLineEdit:
    """A masked field to paste `what` into, for the keyring."""
    edit = line_edit(parent, f"paste {what} to store it in the keyring", name=name)
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit
