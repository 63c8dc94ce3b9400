"""MemberWorkflow: one perpetual entity workflow per loyalty-program member.

Public contract (see README): id `member-<member_id>`, started by signal-with-start;
signal `event` (one event object), signal `events` (a list), query `state`, update
`adjust` (manual adjustment with a reason), updates `redeem` and `cancel_redemption`
(from 0.4.0, patch `redemptions`); for the agent: update `decide` (approve or
reject a proposal), queries `proposals` and `agent`.

Ordinary events never wake the agent. Triggers (a support ticket, unusual activity,
nearing a tier) queue up; one agent run at a time runs as a child workflow
(`workflows.agent.AgentTurnWorkflow`) when the guardrails allow it, and its drafts
become proposals that wait for a decision.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RawValue,
    VersioningBehavior,
)
from temporalio.exceptions import (
    ApplicationError,
)
from temporalio.workflow import ChildWorkflowHandle

with workflow.unsafe.imports_passed_through():
    from workflows import carry, drill
    from workflows.actors import reserved_actor_problem
    from workflows.agent import (
        TurnResult,
    )
    from workflows.agent_desk import AgentDesk
    from workflows.contract import (
        MEMBER_PREFIX,
        MEMBER_WORKFLOW,
        QUERY_AGENT,
        QUERY_PROPOSALS,
        QUERY_STATE,
        SIGNAL_AGENT_RESULT,
        SIGNAL_EVENT,
        SIGNAL_EVENTS,
        UPDATE_ADJUST,
        UPDATE_DECIDE,
        UPDATE_SYNC,
    )
    from workflows.contract import (
        member_workflow_id as member_workflow_id,
    )
    from workflows.member_agent import MemberAgent
    from workflows.member_chores import MemberChores
    from workflows.member_decisions import MemberDecisions
    from workflows.member_inbox import _UNDECODABLE, MemberInbox, _Received
    from workflows.member_messages import (
        BOUNDED_PATCH,
        HOLD_PATCH,
        MAX_ACTOR,
        MAX_EVENTS_PER_TASK,
        PER_EVENT_PATCH,
        REDEEM_PATCH,
        REQUESTS_KEEP,
        REWARD_EFFECTS_PATCH,
        Adjustment,
        AdjustmentResult,
        Decision,
        DecisionResult,
        MemberInput,
        decision_problem,
        request_problem,
    )
    from workflows.member_messages import (
        MAX_DIGEST_CHARS as MAX_DIGEST_CHARS,
    )
    from workflows.member_messages import (
        MAX_EVENTS_PER_RUN as MAX_EVENTS_PER_RUN,
    )
    from workflows.member_messages import (
        MAX_POLICY_CHARS as MAX_POLICY_CHARS,
    )
    from workflows.member_messages import (
        MAX_PROPOSAL_ID_CHARS as MAX_PROPOSAL_ID_CHARS,
    )
    from workflows.member_messages import (
        MAX_REASON_CHARS as MAX_REASON_CHARS,
    )
    from workflows.member_messages import (
        MAX_REQUEST_ID_BYTES as MAX_REQUEST_ID_BYTES,
    )
    from workflows.member_messages import (
        MAX_SIGNALS_PER_RUN as MAX_SIGNALS_PER_RUN,
    )
    from workflows.member_messages import (
        trigger_key_of as trigger_key_of,
    )
    from workflows.member_redeem import CATALOGUE, MemberRedemptions
    from workflows.rules import MemberBook, MemberSnapshot

WORKFLOW_ID_PREFIX = MEMBER_PREFIX


def _raise_if_crashed(tasks: list[asyncio.Task[None]]) -> None:
    """A background loop (expiry, agent, outbox) that died of a bug fails the workflow
    task, visibly and retried until a fixed build runs it, instead of dying silently;
    never the workflow itself."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            error = task.exception()
            raise RuntimeError(f"a member background loop crashed: {error!r}") from error


@workflow.defn(name=MEMBER_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class MemberWorkflow(MemberAgent, MemberChores, MemberInbox, MemberDecisions, MemberRedemptions):
    @workflow.init
    def __init__(self, input: MemberInput) -> None:
        snapshot = input.snapshot or MemberSnapshot(member_id=input.member_id)
        self._book = MemberBook(snapshot)
        self._requests: dict[str, int] = dict.fromkeys(input.requests or [], 0)
        self._signals = 0
        self._events = 0
        self._published: dict[str, Any] = {}
        self._published_at: datetime | None = None
        self._dirty = True
        self._limits = (max(1, input.max_signals), max(1, input.max_events))
        self._desk = AgentDesk(input.member_id, input.agent)
        self._closing = False  # continuing as new: start no agent run or delivery
        self._agent_paused: str | None = None
        self._agent_busy = False  # starting an agent run
        self._child: ChildWorkflowHandle[Any, TurnResult] | None = None
        self._inbox: deque[_Received] = deque()
        self._budget_task = -1  # the task (by history length) the budget is for
        self._budget_left = MAX_EVENTS_PER_TASK
        # decided once per run, before any handler (validators may not call patched)
        self._is_bounded = workflow.patched(BOUNDED_PATCH)
        self._binds = workflow.patched(HOLD_PATCH)
        self._per_event = workflow.patched(PER_EVENT_PATCH)
        self._redeems = workflow.patched(REDEEM_PATCH)
        self._reward_effects = workflow.patched(REWARD_EFFECTS_PATCH)
        self._book.hold = self._binds
        self._book.reward_effects = self._reward_effects
        self._book.cancel_events = self._reward_effects
        # the agent may propose goodwill rewards from this catalogue (build 0.4.1)
        self._rewards = CATALOGUE if self._reward_effects else None

    @workflow.run
    async def run(self, input: MemberInput) -> None:
        tasks = [
            asyncio.create_task(self._expire_when_inactive()),
            asyncio.create_task(self._run_agent()),
            asyncio.create_task(self._deliver_effects()),
            asyncio.create_task(self._expire_proposals()),
        ]
        if self._bounded():
            tasks.append(asyncio.create_task(self._drain_inbox()))
        while True:
            await workflow.wait_condition(
                lambda: self._dirty or self._should_continue() or any(t.done() for t in tasks)
            )
            _raise_if_crashed(tasks)
            if self._dirty and not self._should_continue():
                await self._publish_soon()
            if self._should_continue():
                self._closing = True
                self._publish()
                await self._hand_over_agent_run()
                # signal handlers apply events synchronously, so once every update
                # handler finished nothing received is left unapplied. Agent runs and
                # outbox deliveries don't hold it up: a running agent run answers the
                # next run by signal, an interrupted delivery is redone (idempotent).
                await workflow.wait_condition(
                    lambda: (
                        workflow.all_handlers_finished()
                        and not self._agent_busy
                        and not self._inbox
                    )
                )
                self._publish()
                for task in tasks:
                    task.cancel()
                self._book.s.runs += 1
                next_input = MemberInput(
                    member_id=self._book.member_id,
                    snapshot=self._book.s,
                    requests=list(self._requests)[-REQUESTS_KEEP:],
                    max_signals=self._limits[0],
                    max_events=self._limits[1],
                    agent=self._desk.carry(),
                )
                if self._bounded():
                    shrunk = carry.fit(next_input)
                    if shrunk:
                        workflow.logger.warning(
                            "member %s carried more than %s bytes; shrank %s",
                            self._book.member_id,
                            carry.CARRY_BUDGET,
                            ", ".join(shrunk),
                        )
                workflow.continue_as_new(next_input)

    def _should_continue(self) -> bool:
        return (
            self._signals >= self._limits[0]
            or self._events >= self._limits[1]
            or workflow.info().is_continue_as_new_suggested()
        )

    def _bounded(self) -> bool:
        """This run queues events and bounds each task's work (see BOUNDED_PATCH)."""
        return self._is_bounded

    def _build(self) -> str:
        version = workflow.info().get_current_deployment_version()
        build = version.build_id if version else "unversioned"
        self._book.drill = drill.drill_for(build)
        drill.inject_commands(self._book.drill)
        return build

    # -- signals --------------------------------------------------------------

    @workflow.signal(name=SIGNAL_EVENT)
    def event(self, payload: RawValue) -> None:
        self._signalled(payload, bulk=False)

    @workflow.signal(name=SIGNAL_EVENTS)
    def events(self, payload: RawValue) -> None:
        self._signalled(payload, bulk=True)

    def _signalled(self, payload: RawValue, *, bulk: bool) -> None:
        """One event (`bulk` False) or a JSON list of them: into the inbox, or (runs of
        builds before `bounded-tasks`) applied at once in the signal's task."""
        if self._bounded():
            self._receive(_Received(payload, workflow.now(), bulk=bulk))
            return
        self._signals += 1
        self._events += 0 if bulk else 1
        self._dirty = True
        raw = self._decoded(payload)
        if raw is _UNDECODABLE:
            return
        if not bulk:
            raw = [raw]
        elif not isinstance(raw, list):
            self._book.reject(None, "the events signal takes a JSON list of event objects")
            return
        else:
            self._events += len(raw)
        build, now = self._build(), workflow.now()
        for item in raw:
            outcome = self._book.apply(item, build_id=build, received_at=now)
            self._desk.observe(outcome, self._book, now)

    @workflow.signal(name=SIGNAL_AGENT_RESULT)
    def agent_result(self, result: TurnResult) -> None:
        """An agent run's result (sent by AgentTurnWorkflow); not a member event."""
        self._take_result(result)

    # -- updates --------------------------------------------------------------

    @workflow.update(name=UPDATE_ADJUST)
    def adjust(self, request: Adjustment) -> AdjustmentResult:
        if request.request_id in self._requests:
            return AdjustmentResult(
                False, self._book.s.points, self._requests[request.request_id], "already applied"
            )
        if self._bounded():
            # the validator ran on the state at acceptance; whatever changed since, a
            # refusal is the update's failure, never the workflow task's
            problem = request_problem(request) or self._book.check_adjustment(
                request.points, request.reason
            )
            if problem:
                raise ApplicationError(problem, type="AdjustmentRefused", non_retryable=True)
        entry = self._book.adjust(
            request.points, f"{request.reason} (by {request.actor})", workflow.now(), self._build()
        )
        self._requests[request.request_id] = entry["seq"]
        self._dirty = True
        return AdjustmentResult(True, self._book.s.points, entry["seq"], "applied")

    @adjust.validator
    def _validate_adjust(self, request: Adjustment) -> None:
        if isinstance(request.request_id, str) and request.request_id in self._requests:
            return  # a retry: accepted, answered with the first result
        problem = request_problem(request) or self._book.check_adjustment(
            request.points, request.reason
        )
        if problem is None and (not isinstance(request.actor, str) or not request.actor.strip()):
            problem = "the actor (who makes the adjustment) is required"
        if problem is None:
            problem = reserved_actor_problem(request.actor)
        if problem:
            raise ValueError(problem)

    @workflow.update(name=UPDATE_SYNC)
    async def sync(self) -> dict[str, Any]:
        """The member's state after every signal sent before this call has been applied.

        Without the agent's sections (`proposals`, `agent`, `costs`): those change in
        the background, on the agent's own time; the `state` query has them.
        """
        if self._inbox:
            await workflow.wait_condition(lambda: not self._inbox)
        return self._member_state()

    @workflow.update(name=UPDATE_DECIDE)
    async def decide(self, decision: Decision) -> DecisionResult:
        """Approve or reject a proposal; an approval applies once.

        A decision for a proposal whose agent run is still queued or running (e.g. an
        approval reapplied after a reset, before the agent re-ran) waits for it.
        """
        if self._binds:
            return self._decide_bound(decision)
        pid = decision.proposal_id
        key = trigger_key_of(pid)
        if self._inbox and self._desk.proposals.get(pid) is None:
            # events sent before it still wait: the trigger may be among them
            await workflow.wait_condition(lambda: not self._inbox)
        if self._desk.proposals.get(pid) is None and self._desk.awaiting(key):
            await workflow.wait_condition(
                lambda: (
                    self._desk.proposals.get(pid) is not None
                    or not self._desk.awaiting(key)
                    or (self._closing and not self._agent_busy)
                )
            )
        problem = self._desk.check_decision(pid, decision.approve, workflow.now())
        if problem is None and self._bounded():
            problem = decision_problem(decision) or self._approval_problem(pid, decision.approve)
        if problem:
            raise ApplicationError(problem, type="DecisionRefused", non_retryable=True)
        return self._apply_person(decision)

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        bounds = decision_problem(decision)
        if bounds:
            raise ValueError(bounds)
        if not isinstance(decision.reason, str) or not decision.reason.strip():
            raise ValueError("a reason is required for a decision")
        if not isinstance(decision.actor, str) or not decision.actor.strip():
            raise ValueError("who decides (the actor) is required")
        if len(decision.actor) > MAX_ACTOR:
            raise ValueError(f"the actor is longer than {MAX_ACTOR} characters")
        reserved = reserved_actor_problem(decision.actor)
        if reserved:
            raise ValueError(reserved)
        pid = decision.proposal_id
        if self._binds:
            problem = self._binding_problem(decision)
            if problem:
                raise ValueError(problem)
            return
        if (
            self._desk.proposals.get(pid) is None
            and pid.split(":", 1)[0] == self._book.member_id
            and (self._desk.awaiting(trigger_key_of(pid)) or self._inbox)
        ):
            return  # its agent run is still to come: the handler waits for it
        problem = self._desk.check_decision(pid, decision.approve, workflow.now())
        if problem is None:
            problem = self._approval_problem(pid, decision.approve)
        if problem:
            raise ValueError(problem)

    # -- queries --------------------------------------------------------------

    @workflow.query(name=QUERY_STATE)
    def state(self) -> dict[str, Any]:
        summary = self._member_state()
        summary["proposals"] = self.proposals()
        summary["agent"] = self._desk.view(workflow.now(), self._agent_paused)
        summary["costs"] = self._desk.guard.costs_view()
        return summary

    def _member_state(self) -> dict[str, Any]:
        summary = self._book.summary()
        version = workflow.info().get_current_deployment_version()
        summary["build_id"] = version.build_id if version else "unversioned"
        summary["drill"] = drill.drill_for(summary["build_id"])
        summary["run_signals"] = self._signals
        if self._redeems:
            summary.update(self._book.redemptions_view())
        return summary

    @workflow.query(name=QUERY_PROPOSALS)
    def proposals(self) -> list[dict[str, Any]]:
        """Pending proposals and the most recent decided ones, oldest first."""
        return [dict(r) for r in self._desk.proposals.records]

    @workflow.query(name=QUERY_AGENT)
    def agent(self) -> dict[str, Any]:
        """The agent's side of the member without the ledger: what `costs` aggregates."""
        return {
            "member_id": self._book.member_id,
            "tier": self._book.s.tier,
            "points": self._book.s.points,
            "pending_proposals": self._desk.proposals.pending_count(),
            "agent": self._desk.view(workflow.now(), self._agent_paused),
            "costs": self._desk.guard.costs_view(),
        }
