"""Member events the tests feed: shaped as a real feed's, dated by phase."""

from __future__ import annotations

from typing import Any


def member_events(member: str, phase: str, count: int, day: int) -> list[dict[str, Any]]:
    """Trips and purchases with refunds of earlier ones, dated within one phase."""
    events: list[dict[str, Any]] = []
    for n in range(count):
        stamp = f"2026-04-{day + n // 6:02d}T{8 + n % 6:02d}:00:00Z"
        if n % 5 == 4:
            events.append(
                {
                    "type": "refund",
                    "event_id": f"{member}-{phase}-r{n}",
                    "member_id": member,
                    "occurred_at": stamp,
                    "refers_to": f"{member}-{phase}-{n - 2}",
                }
            )
        else:
            events.append(
                {
                    "type": "trip_completed" if n % 2 else "purchase",
                    "event_id": f"{member}-{phase}-{n}",
                    "member_id": member,
                    "occurred_at": stamp,
                    ("fare_cents" if n % 2 else "amount_cents"): 1_500 + 731 * n,
                }
            )
    return events
