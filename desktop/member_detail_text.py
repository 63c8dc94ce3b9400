"""How the member detail and the approvals queue write times, run ids, proposals and a
member's state (no Qt)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desktop.units import local_time_text
from workflows.proposals import arguments_text


def short_time(value: Any) -> str:
    """2026-03-01T10:01:00Z or a datetime -> 2026-03-01 11:01:00 in the operator's
    time zone (`units.utc_time_text` gives the UTC one for the tooltip)."""
    return local_time_text(value)


def short_run(run_id: str) -> str:
    """A run id people can tell apart: its last 8 characters (the first ones of a
    time-ordered UUID are alike for runs started close together)."""
    return run_id[-8:]


def proposal_text(proposal: dict[str, Any]) -> str:
    """A proposal's arguments in a few words (workflows.proposals.arguments_text)."""
    return arguments_text(proposal.get("action"), proposal.get("arguments") or {})


def state_signature(state: dict[str, Any]) -> tuple[Any, ...]:
    """What changes when something new belongs on the timeline."""
    ledger = state.get("ledger") or []
    return (
        state.get("runs"),
        state.get("run_signals"),
        state.get("events_processed"),
        state.get("events_rejected"),
        ledger[-1]["seq"] if ledger else 0,
        state.get("build_id"),
        tuple((p.get("id"), p.get("status")) for p in state.get("proposals") or []),
    )


def chart_points(state: dict[str, Any]) -> list[tuple[datetime, int]]:
    points = []
    for entry in state.get("ledger") or []:
        try:
            at = datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        points.append((at, int(entry["balance"])))
    return points


def state_text(key: str, value: Any, state: dict[str, Any]) -> str:
    if value is None:
        return "—"
    if key == "last_event_at":
        return short_time(value) or "—"
    if key == "build_id" and state.get("drill"):
        return f"{value} · DRILL {state['drill']}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
