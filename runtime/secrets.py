"""Secrets live in the OS keyring only (service "loyalty-desk"), never in a file.

`keyring` picks the platform's backend: the Secret Service (GNOME Keyring, KWallet)
on Linux, the Keychain on macOS, the Credential Locker on Windows. Without one it
falls back to `keyring.backends.fail.Keyring`, which we report in one clear line; the
offline model needs no key, so the app stays usable.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from activities.model_endpoint import endpoint_origin, endpoint_problem

SERVICE = "loyalty-desk"
# tests (and people with several desks) can keep their secrets apart
SERVICE_ENV = "LOYALTY_DESK_KEYRING_SERVICE"
# the model provider key; the Temporal Cloud API key; the secret that signs webhook
# deliveries of effects; the SMTP password for email effects
KNOWN = ("openai", "temporal", "webhook", "smtp")


class SecretsError(RuntimeError):
    """The keyring can't do what was asked; the message is one line for people."""


class KeyBindingError(SecretsError, ValueError):
    """The model key may not go where the settings point; the message is one line."""


# The model key is bound to the endpoint it was stored for (scheme, host, port), kept
# beside it in the keyring: settings.json is an ordinary file, and pointing its base_url
# elsewhere must not send the key there.
ORIGIN_SUFFIX = ".origin"
BOUND = ("openai",)


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


def set_secret(name: str, value: str, *, endpoint: str | None = None) -> str:
    """Store a secret; returns the backend that holds it. The model key (`openai`) is
    stored for one endpoint, `endpoint` (a base URL; None: OpenAI's own), and is sent
    nowhere else; an endpoint over plain http off this machine is refused."""
    _check_name(name)
    value = value.strip()
    if not value:
        raise SecretsError("the secret is empty: pass it on stdin")
    origin = None
    if name in BOUND:
        problem = endpoint_problem(endpoint)
        if problem:
            raise KeyBindingError(problem)
        origin = endpoint_origin(endpoint)
    backend = _keyring()
    if not usable(backend):
        raise SecretsError(no_backend_message())
    try:
        if origin is not None:
            # the binding first: a key never sits in the keyring bound to an old endpoint
            backend.set_password(service(), name + ORIGIN_SUFFIX, origin)
        backend.set_password(service(), name, value)
    except Exception as error:  # keyring raises backend-specific errors
        raise SecretsError(f"the keyring refused to store it: {type(error).__name__}") from None
    return backend_name(backend)


def bound_origin(name: str) -> str | None:
    """The endpoint (scheme://host[:port]) a key was stored for; a key stored before
    keys were bound counts as OpenAI's own (https://api.openai.com)."""
    backend = _keyring()
    if name not in BOUND or not usable(backend):
        return None
    try:
        value = backend.get_password(service(), name + ORIGIN_SUFFIX)
    except Exception:
        value = None
    return str(value) if value else endpoint_origin(None)


def model_key(base_url: str | None) -> str | None:
    """The model key, if it may be sent to `base_url`: only to the endpoint it was stored
    for, over https unless that is this machine. None when no key is stored;
    KeyBindingError (one line, never the key) when it may not go there."""
    problem = endpoint_problem(base_url)
    if problem:
        raise KeyBindingError(problem)
    key = get_secret("openai")
    if key is None:
        return None
    wanted, stored_for = endpoint_origin(base_url), bound_origin("openai")
    if wanted != stored_for:
        raise KeyBindingError(
            f"the OpenAI key was stored for {stored_for}, not {wanted}: to use it there, "
            "store it again for that endpoint (`loyalty-desk secrets set openai --for URL`)"
        )
    return key


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
    if name in BOUND:
        with contextlib.suppress(Exception):
            backend.delete_password(service(), name + ORIGIN_SUFFIX)
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
        message = f"the {name} key is stored in {backend_name(backend)}" + (
            f", for {bound_origin(name)} only" if name in BOUND else ""
        )
    else:
        message = (
            f"no {name} key stored (keyring backend {backend_name(backend)}); "
            f"set one with `loyalty-desk secrets set {name}`"
        )
    return SecretStatus(name, stored, backend_name(backend), ok, service(), message)
