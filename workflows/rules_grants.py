"""What people and the agent change on a MemberBook besides events: approved
proposals (goodwill points, a granted tier) and manual adjustments, with their checks.
A mixin of `workflows.rules.MemberBook`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from workflows.book import (
    MAX_ADJUSTMENT,
    TIER_GRANT_DAYS,
    TIER_NAMES,
    MemberSnapshot,
    tier_rank,
)
from workflows.isotime import iso


class Grants:
    """Approved proposals, granted tiers and adjustments (see the module)."""

    s: MemberSnapshot
    _watermark: datetime | None

    if TYPE_CHECKING:

        def earned_tier(self) -> str: ...

        def _retier(self) -> None: ...

        def _post(
            self, kind: str, cause: str, delta: int, at: datetime, build_id: str
        ) -> dict[str, Any]: ...

        def give_reward(
            self, arguments: Mapping[str, Any], cause: str, at: datetime, build_id: str
        ) -> dict[str, Any]: ...

        def check_reward(self, arguments: Mapping[str, Any], cause: str) -> str | None: ...

    def apply_approved(
        self, action: str, arguments: dict[str, Any], cause: str, at: datetime, build_id: str
    ) -> dict[str, Any] | None:
        """An approved agent proposal's effect on the member, as the member workflow
        applies it (and a replay of its history must): goodwill points or a granted
        tier, with the ledger entry it posts; other actions change nothing here."""
        if action == "grant_points":
            return self.grant(arguments["points"], cause, at, build_id)
        if action == "change_tier":
            return self.grant_tier(arguments["tier"], cause, at, build_id)
        if action == "redeem_reward":
            return self.give_reward(arguments, cause, at, build_id)
        return None

    def check_approved(self, action: str, arguments: dict[str, Any], cause: str) -> str | None:
        """Why `apply_approved` would refuse this approval now (None: it applies)."""
        if action == "grant_points":
            points: Any = arguments.get("points")
            problem = self.check_adjustment(points, cause)
            if problem is None and points < 0:
                problem = "a grant is positive"
            return problem
        if action == "change_tier":
            return self.check_tier_grant(arguments.get("tier"), cause)  # type: ignore[arg-type]
        if action == "redeem_reward":
            return self.check_reward(arguments, cause)
        return None

    def check_tier_grant(self, tier: str, cause: str) -> str | None:
        if tier not in TIER_NAMES:
            return f"unknown tier {str(tier)[:40]!r}; expected one of {', '.join(TIER_NAMES)}"
        if not isinstance(cause, str) or not cause.strip():
            return "a cause (the proposal id) is required"
        return None

    def grant_tier(self, tier: str, cause: str, at: datetime, build_id: str) -> dict[str, Any]:
        """An approved tier change; validate first with check_tier_grant.

        The grant starts at `at` (the decision's workflow time) or at the latest event,
        whichever is later, and lasts TIER_GRANT_DAYS of event time. Measured against
        the earned tier, a grant up is a floor and a grant down a ceiling, so the
        member is at the granted tier right away. A later grant replaces an earlier
        one. Returns the ledger entry it posts.
        """
        problem = self.check_tier_grant(tier, cause)
        if problem:
            raise ValueError(problem)
        start = max(at, self._watermark) if self._watermark is not None else at
        self.s.tier_override = {
            "tier": tier,
            "bound": "floor" if tier_rank(tier) >= tier_rank(self.earned_tier()) else "ceiling",
            "granted_at": iso(start),
            "until": iso(start + timedelta(days=TIER_GRANT_DAYS)),
            "cause": cause,
        }
        self._retier()
        entry = self._post("tier", cause, 0, at, build_id)
        entry["tier"] = self.s.tier
        return entry

    def adjust(self, delta: int, reason: str, at: datetime, build_id: str) -> dict[str, Any]:
        """A manual adjustment or an approved grant; validate first with check_adjustment."""
        problem = self.check_adjustment(delta, reason)
        if problem:
            raise ValueError(problem)
        self.s.active_at = iso(at)
        return self._post("adjustment", reason, delta, at, build_id)

    def grant(self, points: int, proposal_id: str, at: datetime, build_id: str) -> dict[str, Any]:
        """An approved goodwill proposal: ledger kind "goodwill", cause the proposal id.

        Like an adjustment it moves the balance (not the tier window or lifetime
        points, which count earned points only) and counts as activity.
        """
        problem = self.check_adjustment(points, proposal_id)
        if problem is None and points < 0:
            problem = "a grant is positive"
        if problem:
            raise ValueError(problem)
        self.s.active_at = iso(at)
        return self._post("goodwill", proposal_id, points, at, build_id)

    def check_adjustment(self, delta: int, reason: str) -> str | None:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            return "the adjustment must be a non-zero whole number of points"
        if abs(delta) > MAX_ADJUSTMENT:
            return f"an adjustment is limited to {MAX_ADJUSTMENT:,} points"
        if self.s.points + delta < 0:
            return f"the balance is {self.s.points}; it cannot go below zero"
        if not isinstance(reason, str) or not reason.strip():
            return "a reason is required"
        return None
