"""Secrets live in the OS keyring only (service "loyalty-desk"), never in a file.

`keyring` picks the platform's backend: the Secret Service (GNOME Keyring, KWallet)
on Linux, the Keychain on macOS, the Credential Locker on Windows. Without one it
falls back to `keyring.backends.fail.Keyring`, which we report in one clear line; the
offline model needs no key, so the app stays usable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

SERVICE = "loyalty-desk"
# tests (and people with several desks) can keep their secrets apart
SERVICE_ENV = "LOYALTY_DESK_KEYRING_SERVICE"
KNOWN = ("openai", "temporal")  # the model provider's key; a Temporal Cloud API key


class SecretsError(RuntimeError):
    """The keyring can't do what was asked; the message is one line for people."""


def service() -> str:
    return os.environ.get(SERVICE_ENV) or SERVICE


def _keyring() -> Any:
    import keyring

    return keyring.get_keyring()


def backend_name(backend: Any | None = None) -> str:
    backend = backend if backend is not None else _keyring()
    cls = type(backend)
    return f"{cls.__module__}.{cls.__name__}"


def usable(backend: Any | None = None) -> bool:
    """False for the fail backend (no keyring at all) and for a chainer with nothing in it."""
    from keyring.backends import chainer, fail

    backend = backend if backend is not None else _keyring()
    if isinstance(backend, fail.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return bool(backend.backends)
    return True


def no_backend_message() -> str:
    return (
        "no OS keyring backend is available (keyring fell back to its fail backend): "
        "start a Secret Service (e.g. gnome-keyring) or use the offline model, which needs no key"
    )


def _check_name(name: str) -> None:
    if name not in KNOWN:
        raise SecretsError(f"unknown secret {name!r}; known: {', '.join(KNOWN)}")


def set_secret(name: str, value: str) -> str:
    """Store a secret; returns the backend that holds it."""
    _check_name(name)
    value = value.strip()
    if not value:
        raise SecretsError("the secret is empty: pass it on stdin")
    backend = _keyring()
    if not usable(backend):
        raise SecretsError(no_backend_message())
    try:
        backend.set_password(service(), name, value)
    except Exception as error:  # keyring raises backend-specific errors
        raise SecretsError(f"the keyring refused to store it: {type(error).__name__}") from None
    return backend_name(backend)


def get_secret(name: str) -> str | None:
    """The secret, or None when there is none or no keyring (never raises for that)."""
    _check_name(name)
    backend = _keyring()
    if not usable(backend):
        return None
    try:
        value = backend.get_password(service(), name)
    except Exception:
        return None
    return str(value) if value else None


def delete_secret(name: str) -> bool:
    _check_name(name)
    backend = _keyring()
    if not usable(backend):
        raise SecretsError(no_backend_message())
    try:
        backend.delete_password(service(), name)
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class SecretStatus:
    name: str
    stored: bool
    backend: str
    usable: bool
    service: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def status(name: str) -> SecretStatus:
    _check_name(name)
    backend = _keyring()
    ok = usable(backend)
    stored = ok and get_secret(name) is not None
    if not ok:
        message = no_backend_message()
    elif stored:
        message = f"the {name} key is stored in {backend_name(backend)}"
    else:
        message = (
            f"no {name} key stored (keyring backend {backend_name(backend)}); "
            f"set one with `loyalty-desk secrets set {name}`"
        )
    return SecretStatus(name, stored, backend_name(backend), ok, service(), message)
