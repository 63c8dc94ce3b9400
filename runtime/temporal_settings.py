"""The Temporal target saved in `DATA_DIR/settings.json` ("temporal" section).

    {"temporal": {"address": "my-ns.a1b2c.tmprl.cloud:7233", "namespace": "my-ns.a1b2c",
                  "tls_cert_path": "/path/client.pem", "tls_private_path": "/path/client.key"}}

No address means the embedded server. The TLS files are paths, read when connecting;
the API key lives in the OS keyring under the name "temporal" (runtime/secrets.py),
never in this file. Command-line options and LOYALTY_DESK_* variables win over it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETTINGS_FILE = "settings.json"  # shared with runtime/agent_config.py
SECTION = "temporal"
API_KEY_SECRET = "temporal"


class TemporalSettingsError(ValueError):
    """The saved Temporal target can't be used; the message is one line."""


@dataclass(frozen=True)
class TemporalSettings:
    address: str | None = None  # None: the embedded server
    namespace: str | None = None
    tls_cert_path: str | None = None
    tls_private_path: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


def from_raw(raw: dict[str, Any]) -> TemporalSettings:
    section = raw.get(SECTION) or {}
    if not isinstance(section, dict):
        raise TemporalSettingsError(f'"{SECTION}" must be an object')
    known = set(TemporalSettings.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise TemporalSettingsError(f"unknown temporal settings: {', '.join(unknown)}")
    values = {k: str(v).strip() or None for k, v in section.items() if v is not None}
    settings = TemporalSettings(**values)
    if bool(settings.tls_cert_path) != bool(settings.tls_private_path):
        raise TemporalSettingsError("TLS needs both the client certificate and its key file")
    return settings


def load(data_dir: Path) -> TemporalSettings:
    return from_raw(read_raw(data_dir))


def read_raw(data_dir: Path) -> dict[str, Any]:
    """The whole settings file, read without importing the agent's settings module:
    that one pulls in the model SDKs, and every command (and the window) reads this
    before anything slow may happen."""
    path = Path(data_dir) / SETTINGS_FILE
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TemporalSettingsError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(raw, dict):
        raise TemporalSettingsError(f"{path} must hold a JSON object")
    return raw
