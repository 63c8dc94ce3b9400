"""Budgets, the circuit breaker and cost accounting of one member's agent.

Pure code over a small dataclass that the member carries across continue-as-new.
Days are days of workflow time, `policy.day_seconds` long (24 h unless configured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.agent_policy import AgentPolicy
from workflows.isotime import iso, parse_iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GRANTS_KEEP = 500  # grants remembered for the daily caps (a day holds far fewer)


def _zero_costs() -> dict[str, Any]:
    return {"model_calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}


@dataclass
class GuardState:
    budget_day: int = -1
    calls_today: int = 0
    tokens_today: int = 0
    breaker: str = "closed"  # closed | open | half_open
    failures: int = 0  # consecutive failed runs
    opened_at: str | None = None
    runs: int = 0
    runs_failed: int = 0
    triggers_dropped: int = 0
    last_error: str | None = None
    costs: dict[str, Any] = field(default_factory=_zero_costs)
    by_action: dict[str, dict[str, Any]] = field(default_factory=dict)
    # grants applied within the last day: [when (ISO), points, approved by policy]
    grants: list[list[Any]] = field(default_factory=list)


class AgentGuard:
    def __init__(self, state: GuardState | None = None) -> None:
        self.s = state or GuardState()

    # -- budget -----------------------------------------------------------------

    @staticmethod
    def day_of(now: datetime, policy: AgentPolicy) -> int:
        return int((now - _EPOCH).total_seconds() // policy.day_seconds)

    def _roll(self, now: datetime, policy: AgentPolicy) -> None:
        day = self.day_of(now, policy)
        if day != self.s.budget_day:
            self.s.budget_day = day
            self.s.calls_today = 0
            self.s.tokens_today = 0

    def budget_left(self, now: datetime, policy: AgentPolicy) -> tuple[int, int]:
        """Model calls and tokens still allowed today."""
        self._roll(now, policy)
        return (
            max(0, policy.max_calls_per_day - self.s.calls_today),
            max(0, policy.max_tokens_per_day - self.s.tokens_today),
        )

    def next_day(self, now: datetime, policy: AgentPolicy) -> datetime:
        return _EPOCH + timedelta(seconds=(self.day_of(now, policy) + 1) * policy.day_seconds)

    # -- breaker ----------------------------------------------------------------

    def breaker_wait(self, now: datetime, policy: AgentPolicy) -> timedelta | None:
        """How long the open breaker stays open; half-opens it once the cool-down passed."""
        if self.s.breaker != "open" or self.s.opened_at is None:
            return None
        until = parse_iso(self.s.opened_at) + timedelta(seconds=policy.breaker_cooldown_seconds)
        if now >= until:
            self.s.breaker = "half_open"
            return None
        return until - now

    # -- accounting ---------------------------------------------------------------

    def record_run(
        self,
        *,
        ok: bool,
        error: str | None,
        calls: int,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        now: datetime,
        policy: AgentPolicy,
    ) -> None:
        self._roll(now, policy)
        self.s.runs += 1
        self.s.calls_today += calls
        self.s.tokens_today += input_tokens + output_tokens
        costs = self.s.costs
        costs["model_calls"] += calls
        costs["input_tokens"] += input_tokens
        costs["output_tokens"] += output_tokens
        costs["cost_usd"] = round(costs["cost_usd"] + cost_usd, 6)
        if ok:
            self.s.failures = 0
            self.s.breaker = "closed"
            self.s.opened_at = None
            return
        self.s.runs_failed += 1
        self.s.failures += 1
        self.s.last_error = error
        if self.s.breaker == "half_open" or self.s.failures >= policy.breaker_failures:
            self.s.breaker = "open"
            self.s.opened_at = iso(now)

    def count_action(self, action: str, *, tokens: int, cost_usd: float, event: str) -> None:
        """Per action type: proposals made, decided, and their share of tokens and cost."""
        row = self.s.by_action.setdefault(
            action,
            {
                "proposals": 0,
                "approved": 0,
                "rejected": 0,
                "expired": 0,
                "tokens": 0,
                "cost_usd": 0.0,
            },
        )
        if event == "proposed":
            row["proposals"] += 1
            row["tokens"] += tokens
            row["cost_usd"] = round(row["cost_usd"] + cost_usd, 6)
        elif event in ("approved", "rejected", "expired"):
            row[event] += 1
        elif event == "no_proposal":
            row["tokens"] += tokens
            row["cost_usd"] = round(row["cost_usd"] + cost_usd, 6)

    # -- points granted per day ---------------------------------------------------

    def granted(self, now: datetime, policy: AgentPolicy) -> tuple[int, int]:
        """(points granted, of them by policy) within the day before `now`."""
        since = now - timedelta(seconds=policy.day_seconds)
        recent = [g for g in self.s.grants if parse_iso(g[0]) > since]
        return sum(g[1] for g in recent), sum(g[1] for g in recent if g[2])

    def note_grant(
        self, now: datetime, points: int, *, by_policy: bool, policy: AgentPolicy
    ) -> None:
        since = now - timedelta(seconds=policy.day_seconds)
        self.s.grants = [g for g in self.s.grants if parse_iso(g[0]) > since][-GRANTS_KEEP:]
        self.s.grants.append([iso(now), points, by_policy])

    # -- views --------------------------------------------------------------------

    def costs_view(self) -> dict[str, Any]:
        c = self.s.costs
        return {
            **c,
            "tokens": c["input_tokens"] + c["output_tokens"],
            "by_action": {k: dict(v) for k, v in sorted(self.s.by_action.items())},
        }

    def view(self, now: datetime, policy: AgentPolicy) -> dict[str, Any]:
        """Read-only (queries call it): a new day shows as an unused budget."""
        today = self.day_of(now, policy) == self.s.budget_day
        calls = self.s.calls_today if today else 0
        tokens = self.s.tokens_today if today else 0
        reopen = None
        if self.s.breaker == "open" and self.s.opened_at:
            reopen = iso(
                parse_iso(self.s.opened_at) + timedelta(seconds=policy.breaker_cooldown_seconds)
            )
        return {
            "budget": {
                "calls_used": calls,
                "calls_max": policy.max_calls_per_day,
                "tokens_used": tokens,
                "tokens_max": policy.max_tokens_per_day,
                "exhausted": calls >= policy.max_calls_per_day
                or tokens >= policy.max_tokens_per_day,
                "renews_at": iso(self.next_day(now, policy)),
            },
            "breaker": {
                "state": self.s.breaker,
                "consecutive_failures": self.s.failures,
                "opened_at": self.s.opened_at,
                "half_open_at": reopen,
            },
            "runs": self.s.runs,
            "runs_failed": self.s.runs_failed,
            "triggers_dropped": self.s.triggers_dropped,
            "last_error": self.s.last_error,
        }
