"""How the member detail and the approvals queue write times, run ids and proposals
(no Qt)."""

from __future__ import annotations

from typing import Any

from desktop.units import local_time_text


def short_time(value: Any) -> str:
    """2026-03-01T10:01:00Z or a datetime -> 2026-03-01 11:01:00 in the operator's
    time zone (`units.utc_time_text` gives the UTC one for the tooltip)."""
    return local_time_text(value)


def short_run(run_id: str) -> str:
    """A run id people can tell apart: its last 8 characters (the first ones of a
    time-ordered UUID are alike for runs started close together)."""
    return run_id[-8:]


def proposal_text(proposal: dict[str, Any]) -> str:
    """A proposal's arguments in a few words: "100 points", "to Gold", the message."""
    args = proposal.get("arguments") or {}
    if proposal.get("action") == "grant_points":
        points = args.get("points")
        return f"{points:,} points" if isinstance(points, int) else str(points)
    if proposal.get("action") == "change_tier":
        return f"to {args.get('tier')}"
    if proposal.get("action") == "message_member":
        return str(args.get("text") or "")
    return ""
