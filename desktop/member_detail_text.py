"""How the member detail and the approvals queue write times and run ids (no Qt)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def short_time(value: Any) -> str:
    """2026-03-01T10:01:00Z or a datetime -> 2026-03-01 10:01:00 (UTC throughout)."""
    if isinstance(value, datetime):
        value = value.isoformat()
    if not isinstance(value, str) or len(value) < 19:
        return ""
    return f"{value[:10]} {value[11:19]}"


def short_run(run_id: str) -> str:
    """A run id people can tell apart: its last 8 characters (the first ones of a
    time-ordered UUID are alike for runs started close together)."""
    return run_id[-8:]
