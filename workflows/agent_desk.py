"""AgentDesk: everything agent-related one member carries, as pure code.

The member workflow owns one desk and drives it (timers, the child workflow, the
outbox activity); the desk decides: which trigger runs next, whether guardrails let
it run, what a finished run turns into, which decisions are allowed. Tested without
Temporal in tests/agent/test_desk.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workflows.agent_guard import AgentGuard, GuardState
from workflows.agent_io import AgentSettings
from workflows.agent_policy import AgentPolicy
from workflows.agent_triggers import TriggerWatch, WatchState
from workflows.isotime import iso, parse_iso
from workflows.proposals import ProposalBook
from workflows.rules import MemberBook, Outcome

MAX_ATTEMPTS = 3  # runs of one trigger that failed on the model provider before it is dropped
YIELD_FIRST = timedelta(seconds=3)  # waits while the worker is busy ingesting, doubling ...
YIELD_LONGEST = timedelta(seconds=24)  # ... up to this


@dataclass
class AgentCarry:
    """What the agent side carries across continue-as-new; bounded."""

    guard: GuardState = field(default_factory=GuardState)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    queue: list[dict[str, Any]] = field(default_factory=list)
    watch: WatchState = field(default_factory=WatchState)
    settings: AgentSettings | None = None
    settings_at: str | None = None
    # the trigger whose agent run is under way; its result comes by signal
    running: dict[str, Any] | None = None


@dataclass(frozen=True)
class Gate:
    run: bool
    wait: timedelta | None = None
    reason: str | None = None  # why the agent is paused: budget | breaker | worker busy


class AgentDesk:
    def __init__(self, member_id: str, carry: AgentCarry | None = None) -> None:
        carry = carry or AgentCarry()
        self.member_id = member_id
        self.guard = AgentGuard(carry.guard)
        self.proposals = ProposalBook(member_id, carry.proposals)
        self.queue: list[dict[str, Any]] = list(carry.queue)
        self.watch = TriggerWatch(carry.watch)
        self.settings = carry.settings
        self.settings_at = carry.settings_at
        self.policy = AgentPolicy.from_dict(self.settings.policy if self.settings else None)
        self.running: dict[str, Any] | None = carry.running
        self._yield_wait: timedelta | None = None

    # -- triggers -----------------------------------------------------------------

    def observe(self, outcome: Outcome, book: MemberBook, now: datetime) -> None:
        if outcome.status != "accepted" or not self.policy.enabled:
            return
        for trigger in self.watch.observe(outcome, book, self.policy):
            if self.awaiting(trigger["key"]) or self.proposals.has_trigger(trigger["key"]):
                continue
            if len(self.queue) >= self.policy.queue_max:
                self.guard.s.triggers_dropped += 1
                continue
            self.queue.append({**trigger, "attempts": 0, "queued_at": iso(now)})

    def awaiting(self, key: str) -> bool:
        """A trigger with this key is queued or running: its proposals are still to come."""
        if self.running is not None and self.running["key"] == key:
            return True
        return any(t["key"] == key for t in self.queue)

    # -- settings -------------------------------------------------------------------

    def use_settings(self, settings: AgentSettings, now: datetime) -> None:
        self.settings = settings
        self.settings_at = iso(now)
        self.policy = AgentPolicy.from_dict(settings.policy)

    @property
    def model_label(self) -> str:
        return self.settings.model_label if self.settings else "offline rules model"

    # -- running ----------------------------------------------------------------------

    def gate(self, now: datetime) -> Gate:
        if not self.policy.enabled:
            self.guard.s.triggers_dropped += len(self.queue)
            self.queue.clear()
            return Gate(run=False)
        wait = self.guard.breaker_wait(now, self.policy)
        if wait is not None:
            return Gate(run=False, wait=wait, reason="breaker")
        calls, tokens = self.guard.budget_left(now, self.policy)
        if calls == 0 or tokens == 0:
            return Gate(
                run=False, wait=self.guard.next_day(now, self.policy) - now, reason="budget"
            )
        if self._worker_busy(now):
            wait = self._yield_wait = min(
                YIELD_LONGEST, self._yield_wait * 2 if self._yield_wait else YIELD_FIRST
            )
            return Gate(run=False, wait=wait, reason="worker busy")
        self._yield_wait = None
        return Gate(run=True)

    def _worker_busy(self, now: datetime) -> bool:
        """The worker ingests faster than the policy lets agent runs compete with."""
        limit = self.policy.yield_events_per_s
        if not limit or self.settings is None or self.settings.ingest_events_per_s <= limit:
            return False
        queued_at = self.queue[0].get("queued_at")
        waited = now - parse_iso(queued_at) if queued_at else timedelta(0)
        return waited < timedelta(seconds=self.policy.yield_max_seconds)

    def take(self, now: datetime) -> dict[str, Any]:
        self.running = {**self.queue.pop(0), "started_at": iso(now)}
        return self.running

    def turn_budget(self, now: datetime) -> tuple[int, int]:
        return self.guard.budget_left(now, self.policy)

    def finish(
        self,
        result: Any,
        now: datetime,
        *,
        tier: str,
        rewards: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Account for a finished run; its drafts become proposals (guardrails applied).

        `result` is a workflows.agent.TurnResult (not imported: that module loads the
        Agents SDK, this one stays light).
        """
        trigger = self.running
        assert trigger is not None
        trigger = {k: v for k, v in trigger.items() if k not in ("started_at", "queued_at")}
        self.running = None
        settings = self.settings or AgentSettings()
        cost = (
            result.input_tokens * settings.input_usd_per_mtok
            + result.output_tokens * settings.output_usd_per_mtok
        ) / 1_000_000
        tokens = result.input_tokens + result.output_tokens
        self.guard.record_run(
            ok=result.ok,
            error=result.error,
            calls=result.model_calls,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=cost,
            now=now,
            policy=self.policy,
        )
        if not result.ok or (result.status == "budget" and result.model_calls == 0):
            self._retry_later(trigger, failed=not result.ok)
            return []
        made = self.proposals.create(
            result.drafts,
            trigger=trigger,
            model=result.model,
            tokens=tokens,
            cost_usd=cost,
            tier=tier,
            now=now,
            policy=self.policy,
            rewards=rewards,
        )
        for record in made:
            self.guard.count_action(
                record["action"],
                tokens=record["tokens"],
                cost_usd=record["cost_usd"],
                event="proposed",
            )
            if record["status"] == "rejected":
                self.guard.count_action(record["action"], tokens=0, cost_usd=0, event="rejected")
        if not made:
            self.guard.count_action("none", tokens=tokens, cost_usd=cost, event="no_proposal")
        return made

    def _retry_later(self, trigger: dict[str, Any], *, failed: bool) -> None:
        if failed:
            trigger["attempts"] = trigger.get("attempts", 0) + 1
            if trigger["attempts"] >= MAX_ATTEMPTS:
                self.guard.s.triggers_dropped += 1
                return
        self.queue.insert(0, trigger)

    # -- decisions -------------------------------------------------------------------

    def check_decision(self, proposal_id: str, approve: bool, now: datetime) -> str | None:
        return self.proposals.check_decision(proposal_id, approve, now=now, policy=self.policy)

    def counted(self, record: dict[str, Any]) -> dict[str, Any]:
        """Count a decided proposal (`proposals.decide`'s record) in the day's actions."""
        self.guard.count_action(record["action"], tokens=0, cost_usd=0, event=record["status"])
        return record

    def expire(self, now: datetime) -> list[dict[str, Any]]:
        expired = self.proposals.expire_due(now)
        for record in expired:
            self.guard.count_action(record["action"], tokens=0, cost_usd=0, event="expired")
        return expired

    # -- views -------------------------------------------------------------------------

    def status(self, paused: str | None) -> str:
        if not self.policy.enabled:
            return "disabled"
        if self.running is not None:
            return "running"
        if paused:
            return f"paused ({paused})"
        if self.guard.s.breaker == "open":
            # the result that opened it is in; the pause starts with the next step
            return "paused (breaker)"
        return "queued" if self.queue else "idle"

    def view(self, now: datetime, paused: str | None) -> dict[str, Any]:
        return {
            "model": self.model_label,
            "status": self.status(paused),
            "queued": [{"kind": t["kind"], "key": t["key"]} for t in self.queue],
            "running": self.running["key"] if self.running else None,
            **self.guard.view(now, self.policy),
            "policy": self.policy.as_dict(),
        }

    def carry(self) -> AgentCarry:
        return AgentCarry(
            guard=self.guard.s,
            proposals=self.proposals.records,
            queue=self.queue[: self.policy.queue_max],
            watch=self.watch.s,
            settings=self.settings,
            settings_at=self.settings_at,
            running=self.running,
        )
