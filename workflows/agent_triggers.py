"""When the agent wakes up: support tickets, unusual activity, nearing a tier boundary.

Pure code, by event time only, O(1) per event: an ordinary trip or purchase costs
a comparison or two and never wakes the agent.

Trigger keys are deterministic (the event id, with a suffix for derived triggers),
and proposal ids are built from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.agent_policy import AgentPolicy
from workflows.contract import EARNING_TYPES
from workflows.isotime import iso, parse_iso
from workflows.rules import TIER_WINDOW_DAYS, TIERS, MemberBook, Outcome, tier_rank

TICKET_CHARS = 2_000  # what the agent sees of a ticket
UNUSUAL_COOLDOWN = timedelta(days=1)  # one unusual-activity trigger per day of event time
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class WatchState:
    trips: list[str] = field(default_factory=list)  # latest trip times, bounded
    unusual_until: str | None = None
    nudged: dict[str, int] = field(default_factory=dict)  # next tier -> day number nudged


def next_tier(window_points: int) -> tuple[str, int] | None:
    for name, threshold, _ in TIERS:
        if window_points < threshold:
            return name, threshold
    return None


class TriggerWatch:
    def __init__(self, state: WatchState | None = None) -> None:
        self.s = state or WatchState()

    def observe(
        self, outcome: Outcome, book: MemberBook, policy: AgentPolicy
    ) -> list[dict[str, Any]]:
        """Triggers caused by one applied event (usually none)."""
        event = outcome.event
        if outcome.status != "accepted" or event is None:
            return []
        at = iso(event.occurred_at)
        base = {"event_id": event.event_id, "occurred_at": at}
        if event.type == "support_ticket":
            text = event.text or ""
            return [
                {
                    "kind": "support_ticket",
                    "key": event.event_id,
                    **base,
                    "details": {
                        "ticket_text": text[:TICKET_CHARS],
                        "truncated": len(text) > TICKET_CHARS,
                    },
                }
            ]
        triggers: list[dict[str, Any]] = []
        if event.type == "trip_completed":
            triggers += self._unusual(event.occurred_at, base, policy)
        if event.type in EARNING_TYPES:
            triggers += self._near_tier(book, event.occurred_at, base, policy)
        return triggers

    def _unusual(
        self, moment: datetime, base: dict[str, Any], policy: AgentPolicy
    ) -> list[dict[str, Any]]:
        trips = self.s.trips
        trips.append(iso(moment))
        trips.sort()
        del trips[: max(0, len(trips) - (policy.unusual_trips + 1))]
        since = moment - timedelta(seconds=policy.unusual_window_seconds)
        recent = [t for t in trips if since < parse_iso(t) <= moment]
        if len(recent) <= policy.unusual_trips:
            return []
        if self.s.unusual_until is not None and moment < parse_iso(self.s.unusual_until):
            return []
        self.s.unusual_until = iso(moment + UNUSUAL_COOLDOWN)
        return [
            {
                "kind": "unusual_activity",
                "key": f"{base['event_id']}~unusual",
                **base,
                "details": {
                    "trips_in_window": len(recent),
                    "window_minutes": policy.unusual_window_seconds // 60,
                    "limit": policy.unusual_trips,
                },
            }
        ]

    def _near_tier(
        self, book: MemberBook, moment: datetime, base: dict[str, Any], policy: AgentPolicy
    ) -> list[dict[str, Any]]:
        points = book.window_points
        upcoming = next_tier(points)
        if upcoming is None or policy.tier_nudge_pct <= 0:
            return []
        name, threshold = upcoming
        if points * 100 < threshold * (100 - policy.tier_nudge_pct):
            return []
        if book.s.tier_override is not None and tier_rank(name) <= tier_rank(book.s.tier):
            return []  # a granted tier already puts the member there: nothing to nudge
        day = (moment - _EPOCH).days
        last = self.s.nudged.get(name)
        # once per tier per tier window (event time)
        if last is not None and abs(day - last) < TIER_WINDOW_DAYS:
            return []
        self.s.nudged[name] = day
        return [
            {
                "kind": "tier_boundary",
                "key": f"{base['event_id']}~tier-{name}",
                **base,
                "details": {
                    "tier": book.s.tier,
                    "next_tier": name,
                    "window_points": points,
                    "threshold": threshold,
                    "points_needed": threshold - points,
                },
            }
        ]
