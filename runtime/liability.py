"""What the outstanding points are worth: a liability report from visibility (the
members' search attributes: points, tier, latest event), never a scan of member state.

Points expire INACTIVITY_DAYS after the member's last activity (workflows.rules); the
report dates that from the latest event time the member published, so a member whose
last activity was an adjustment or a redemption shows as expiring earlier than it will
(an upper bound on what expires soon). Value: points x the rate (currency per point):
`--rate`, else the data dir's settings.json {"liability": {"rate": R}}, else
DEFAULT_RATE. The rollback preview values the points it moves at the same rate.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from runtime import temporal_settings
from runtime.members import member_query
from workflows import search_attributes as sa
from workflows.book import INACTIVITY_DAYS, TIER_NAMES

DEFAULT_RATE = 0.01  # currency units per point
MAX_RATE = 1_000.0
HORIZONS = (30, 60, 90)  # days
PAGE = 1_000
COLUMNS = ("members", "points", "value", *(f"expiring_{d}d" for d in HORIZONS))


class LiabilityError(ValueError):
    """A rate or setting the report cannot use; the message is one line."""


def check_rate(rate: object) -> float:
    """A rate in currency per point: a finite number from 0 to MAX_RATE."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise LiabilityError(f"the rate must be a number, got {str(rate)[:40]!r}")
    if not 0 <= rate <= MAX_RATE:
        raise LiabilityError(f"the rate must be between 0 and {MAX_RATE:g} per point")
    return float(rate)


def configured_rate(data_dir: Path | None) -> float:
    """The rate settings.json names ({"liability": {"rate": R}}), else DEFAULT_RATE."""
    if data_dir is None:
        return DEFAULT_RATE
    try:
        section = temporal_settings.read_raw(data_dir).get("liability")
    except temporal_settings.TemporalSettingsError as error:
        raise LiabilityError(str(error)) from None
    if not isinstance(section, dict) or "rate" not in section:
        return DEFAULT_RATE
    return check_rate(section["rate"])


@dataclass
class Liability:
    """One group's members, their points, value, and points expiring within each horizon."""

    members: int = 0
    points: int = 0
    value: float = 0.0
    expiring: dict[int, int] = field(default_factory=lambda: dict.fromkeys(HORIZONS, 0))

    def row(self) -> dict[str, Any]:
        """The group as the CLI and the panel print it (COLUMNS)."""
        return {
            "members": self.members,
            "points": self.points,
            "value": self.value,
            **{f"expiring_{d}d": self.expiring[d] for d in HORIZONS},
        }


@dataclass
class LiabilityReport:
    at: datetime
    rate: float
    total: Liability
    by_tier: dict[str, Liability]
    seconds: float = 0.0

    def groups(self, by_tier: bool = True) -> list[tuple[str, Liability]]:
        rows = [("all", self.total)]
        return rows + list(self.by_tier.items()) if by_tier else rows

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["total"] = self.total.row()
        data["by_tier"] = {tier: group.row() for tier, group in self.by_tier.items()}
        return data

    def csv_text(self, by_tier: bool = True) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["group", *COLUMNS])
        for name, group in self.groups(by_tier):
            row = group.row()
            writer.writerow([name, *(row[c] for c in COLUMNS)])
        return out.getvalue()


# progress(members read so far, members to read: None when visibility could not count)
Progress = Callable[[int, int | None], None]


async def report(
    client: Client,
    query: str | None = None,
    *,
    rate: float = DEFAULT_RATE,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> LiabilityReport:
    """Outstanding points, their value at `rate`, by tier, and what expires in the next
    30/60/90 days; `progress(read, total)` once counted and after every page."""
    rate = check_rate(rate)
    moment = now or datetime.now(UTC)
    started = datetime.now(UTC)
    query = member_query(query)
    total_count: int | None = None
    if progress is not None:
        total_count = (await client.count_workflows(query)).count
        progress(0, total_count)
    total = Liability()
    tiers = {t: Liability() for t in TIER_NAMES}
    deadline_after = timedelta(days=INACTIVITY_DAYS)
    horizons = [(d, timedelta(days=d)) for d in HORIZONS]
    read = 0
    async for execution in client.list_workflows(query, page_size=PAGE):
        attrs = execution.typed_search_attributes
        points = max(0, attrs.get(sa.POINTS) or 0)
        tier = tiers.setdefault(attrs.get(sa.TIER) or TIER_NAMES[0], Liability())
        last: datetime | None = attrs.get(sa.LAST_EVENT_AT)
        left = (last + deadline_after - moment) if last is not None else None
        for group in (total, tier):
            group.members += 1
            group.points += points
            if left is not None and points:
                for days, span in horizons:
                    if left <= span:
                        group.expiring[days] += points
        read += 1
        if progress is not None and read % PAGE == 0:
            progress(read, total_count)
    for group in (total, *tiers.values()):
        group.value = round(group.points * rate, 2)
    if progress is not None and read % PAGE:
        progress(read, total_count)
    seconds = (datetime.now(UTC) - started).total_seconds()
    return LiabilityReport(moment, rate, total, tiers, round(seconds, 3))
