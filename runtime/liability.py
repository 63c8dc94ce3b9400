"""What the outstanding points are worth: a liability report from visibility (the
members' search attributes: points, tier, latest event), never a scan of member state.

Points expire INACTIVITY_DAYS after the member's last activity (workflows.rules); the
report dates that from the latest event time the member published, so a member whose
last activity was an adjustment or a redemption shows as expiring earlier than it will
(an upper bound on what expires soon). Value: points x `rate` (currency per point).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from runtime.members import member_query
from workflows import search_attributes as sa
from workflows.book import INACTIVITY_DAYS, TIER_NAMES

DEFAULT_RATE = 0.01  # currency units per point
HORIZONS = (30, 60, 90)  # days
PAGE = 1_000


def _blank() -> dict[str, Any]:
    return {"members": 0, "points": 0, **{f"expiring_{d}d": 0 for d in HORIZONS}}


async def report(
    client: Client,
    query: str | None = None,
    *,
    rate: float = DEFAULT_RATE,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Outstanding points, their value at `rate`, by tier, and what expires in the next
    30/60/90 days; `progress(members so far)` after every page."""
    moment = now or datetime.now(UTC)
    total, tiers = _blank(), {t: _blank() for t in TIER_NAMES}
    async for execution in client.list_workflows(member_query(query), page_size=PAGE):
        attrs = execution.typed_search_attributes
        points = max(0, attrs.get(sa.POINTS) or 0)
        tier = attrs.get(sa.TIER) or TIER_NAMES[0]
        rows = [total, tiers.setdefault(tier, _blank())]
        last: datetime | None = attrs.get(sa.LAST_EVENT_AT)
        left = (last + timedelta(days=INACTIVITY_DAYS) - moment) if last is not None else None
        for row in rows:
            row["members"] += 1
            row["points"] += points
            for days in HORIZONS:
                if left is not None and points and left <= timedelta(days=days):
                    row[f"expiring_{days}d"] += points
        if progress is not None and total["members"] % PAGE == 0:
            progress(total["members"])
    for row in [total, *tiers.values()]:
        row["value"] = round(row["points"] * rate, 2)
    return {"at": moment.isoformat(), "rate": rate, "total": total, "by_tier": tiers}
