"""The agent's guardrails as data: budgets, caps, limits, triggers, expiry.

Enforced by workflow code (see `agent_guard`, `proposals`, `agent_triggers`), never by
the prompt. The worker reads overrides from `DATA_DIR/settings.json` ("agent" section);
the member workflow fetches them through an activity, so a replay sees the values the
original run used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workflows.rules import MAX_ADJUSTMENT

ACTIONS = ("grant_points", "change_tier", "flag_fraud", "message_member", "redeem_reward")
# a goodwill reward (from build 0.4.1): the reward's cost in points counts against the
# same caps as a grant, a person approves it (never policy), and it is fulfilled as a
# redemption that deducts nothing (workflows.rules_redeem)
# actions whose approval goes to the outbox (an external effect), by outbox kind
OUTBOX_KINDS = {
    "message_member": "message",
    "flag_fraud": "fraud_case",
    "change_tier": "tier_change",
}
OFFLINE_MODEL_LABEL = "offline rules model"


@dataclass(frozen=True)
class AgentPolicy:
    enabled: bool = True
    # per member and per day (of workflow time; `day_seconds` long)
    max_calls_per_day: int = 20
    max_tokens_per_day: int = 40_000
    day_seconds: int = 86_400
    # one proposal can never grant more than this, whoever approves it
    points_cap: int = 5_000
    # model calls in one agent run (the Agents SDK's max_turns)
    max_turns: int = 4
    # the breaker opens after this many consecutive failed runs, half-opens after the cool-down
    breaker_failures: int = 3
    breaker_cooldown_seconds: int = 600
    proposal_ttl_seconds: int = 72 * 3600
    # grants up to this many points are approved by policy; 0 turns it off
    auto_approve_max_points: int = 0
    # triggers
    unusual_trips: int = 5  # more than this many trips ...
    unusual_window_seconds: int = 3600  # ... within this much event time
    tier_nudge_pct: int = 5  # within this percentage below the next tier's threshold
    queue_max: int = 8  # triggers waiting for the agent; more are dropped (and counted)
    # agent runs are background work: they wait while the worker ingests faster than
    # this (events per second; 0 never waits), for at most yield_max_seconds
    yield_events_per_s: int = 50
    yield_max_seconds: int = 300
    max_pending: int = 20  # pending proposals per member; more drafts are refused
    max_proposals_per_run: int = 4
    # points granted to one member within one day (rolling, `day_seconds`), across all
    # proposals, whoever approves them; and the share of that policy may approve alone
    max_points_per_day: int = 5_000
    auto_approve_max_points_per_day: int = 500

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> AgentPolicy:
        """Known keys with the right type; anything else keeps its default, and a value
        above its limit (LIMITS) is held at the limit."""
        if not raw:
            return cls()
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            value = raw[f.name]
            default = getattr(cls, f.name)
            if isinstance(default, bool):
                if isinstance(value, bool):
                    values[f.name] = value
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                values[f.name] = min(value, LIMITS[f.name])
        policy = cls(**values)
        # a zero here would stall or disable guardrails in surprising ways
        return dataclasses.replace(
            policy,
            day_seconds=max(1, policy.day_seconds),
            max_turns=max(1, policy.max_turns),
            breaker_failures=max(1, policy.breaker_failures),
            proposal_ttl_seconds=max(1, policy.proposal_ttl_seconds),
            unusual_trips=max(1, policy.unusual_trips),
            queue_max=max(1, policy.queue_max),
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The largest value each guardrail takes: what the rules accept (no grant above the
# largest adjustment) and what keeps a member's carried state small (queues, pending).
LIMITS: dict[str, int] = {
    "max_calls_per_day": 10_000,
    "max_tokens_per_day": 100_000_000,
    "day_seconds": 30 * 86_400,
    "points_cap": MAX_ADJUSTMENT,
    "max_turns": 50,
    "breaker_failures": 1_000,
    "breaker_cooldown_seconds": 7 * 86_400,
    "proposal_ttl_seconds": 30 * 86_400,
    "auto_approve_max_points": MAX_ADJUSTMENT,
    "unusual_trips": 10_000,
    "unusual_window_seconds": 30 * 86_400,
    "tier_nudge_pct": 100,
    "queue_max": 32,
    "yield_events_per_s": 1_000_000,
    "yield_max_seconds": 86_400,
    "max_pending": 50,
    "max_proposals_per_run": 10,
    "max_points_per_day": 10 * MAX_ADJUSTMENT,
    "auto_approve_max_points_per_day": 10 * MAX_ADJUSTMENT,
}


def policy_problems(raw: dict[str, Any]) -> list[str]:
    """Why these guardrail values can't be used, one line each (empty: they can)."""
    problems = []
    defaults = AgentPolicy().as_dict()
    for name, value in raw.items():
        if name not in defaults:
            problems.append(f"unknown guardrail {str(name)[:40]!r}")
        elif isinstance(defaults[name], bool):
            if not isinstance(value, bool):
                problems.append(f"{name} must be true or false")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{name} must be a whole number, 0 or more")
        elif value > LIMITS[name]:
            problems.append(f"{name} is at most {LIMITS[name]:,}")
    return problems
