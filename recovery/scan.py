"""How far finding and previewing the damage of a bad build are: counts from the first
second, a rate and an estimate of the time left (no Temporal, no Qt: the wizard, the CLI
and the rollback's heartbeats share it)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

FINDING, PREVIEWING, DONE = "finding", "previewing", "done"


@dataclass
class ScanProgress:
    stage: str = FINDING
    total: int = 0  # members to look at (visibility's count when the scan started)
    listed: int = 0  # of those, listed so far (the scan lists first, then looks)
    scanned: int = 0  # looked at (described)
    found: int = 0  # the bad build touched them
    previewed: int = 0  # their repair computed from history
    # seconds since the scan started, and since the current stage started
    elapsed_s: float = 0.0
    stage_s: float = 0.0
    _started: float = field(default_factory=time.monotonic, repr=False, compare=False)
    _stage_started: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def enter(self, stage: str) -> None:
        self.stage, self._stage_started = stage, time.monotonic()
        self.tick()

    def tick(self) -> ScanProgress:
        """Bring the clocks up to now (what a reader of a copy sees)."""
        now = time.monotonic()
        self.elapsed_s = round(now - self._started, 3)
        self.stage_s = round(now - self._stage_started, 3)
        return self

    def _done_of(self) -> tuple[int, int]:
        if self.stage == PREVIEWING:
            return self.previewed, self.found
        return self.scanned, self.total

    @property
    def rate(self) -> float:
        """Members per second in the current stage (0 before the first)."""
        done, _ = self._done_of()
        return done / self.stage_s if self.stage_s > 0 and done else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left in the current stage at the current rate; None while unknown."""
        done, of = self._done_of()
        if self.stage == DONE:
            return 0.0
        return (of - done) / self.rate if self.rate and of >= done else None

    def text(self) -> str:
        """One line: "finding: 340 of 1,000 members looked at, 120 damaged · 95/s · about
        7 s left"."""
        if self.stage == DONE:
            return (
                f"found {self.found:,} damaged of {self.scanned:,} members and previewed "
                f"{self.previewed:,} in {self.elapsed_s:.1f} s"
            )
        if self.stage == PREVIEWING:
            head = f"previewing: {self.previewed:,} of {self.found:,} damaged members"
        elif self.scanned == 0 and self.listed < self.total:
            head = f"finding: listing members, {self.listed:,} of {self.total:,}"
        else:
            head = (
                f"finding: {self.scanned:,} of {self.total:,} members looked at, "
                f"{self.found:,} damaged"
            )
        parts = [head]
        if self.rate:
            parts.append(f"{self.rate:,.0f}/s")
        if self.eta_s is not None:
            parts.append(f"about {self.eta_s:,.0f} s left")
        return " · ".join(parts)

    def as_json(self) -> dict[str, Any]:
        self.tick()
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return data | {"rate": round(self.rate, 2), "eta_s": self.eta_s}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScanProgress:
        """A reader's copy (a heartbeat's details): the rates as the scan saw them."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k[0] != "_"}
        copy = cls(**known)
        now = time.monotonic()
        copy._started = now - float(data.get("elapsed_s") or 0)
        copy._stage_started = now - float(data.get("stage_s") or 0)
        return copy
