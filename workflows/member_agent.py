"""The member workflow's agent: one run at a time as a child workflow, its hand-over at
continue-as-new, its result, and what a decision on a proposal applies.

A mixin of `workflows.member.MemberWorkflow` (the state it reads is the workflow's)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import (
    ActivityError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.agent import (
        AgentTurnWorkflow,
        TurnInput,
        TurnResult,
        agent_workflow_id,
        member_case,
    )
    from workflows.agent_desk import AgentDesk
    from workflows.agent_io import AgentSettings, agent_settings
    from workflows.agent_policy import OUTBOX_KINDS
    from workflows.isotime import parse_iso
    from workflows.member_messages import (
        AGENT_RESULT_GRACE,
        AGENT_RUN_TIMEOUT,
        MAX_COUNT,
        TIER_GRANT_PATCH,
        TURN_STATUSES,
        Decision,
        DecisionResult,
    )
    from workflows.proposals import AUTO_APPROVE_POLICY, points_of
    from workflows.rules import MemberBook


def sane_result(result: TurnResult) -> TurnResult:
    """An agent result as the desk can take it, whatever sent it (the `agent_result`
    signal is open to any client): wrong types become an error result instead of an
    exception that would fail the member's task on every retry."""

    def count(value: Any) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
        return value if ok else 0

    def text(value: Any, limit: int) -> str | None:
        return value[:limit] if isinstance(value, str) else None

    drafts = result.drafts if isinstance(result.drafts, list) else []
    wellformed = isinstance(result.drafts, list) and all(isinstance(d, dict) for d in drafts)
    status = result.status if result.status in TURN_STATUSES else "error"
    return TurnResult(
        status=status if wellformed else "error",
        model=text(result.model, 200) or "unknown model",
        trigger_key=text(result.trigger_key, 1_000) or "",
        model_calls=count(result.model_calls),
        input_tokens=count(result.input_tokens),
        output_tokens=count(result.output_tokens),
        drafts=[dict(d) for d in drafts[:20]] if wellformed else [],
        final=text(result.final, 2_000),
        error=(text(result.error, 300) if wellformed else "the agent result was malformed"),
    )


class MemberAgent:
    """The member's agent runs and decisions (see the module)."""

    _book: MemberBook
    _rewards: dict[str, dict[str, Any]] | None
    _desk: AgentDesk
    _dirty: bool
    _closing: bool
    _agent_paused: str | None
    _agent_busy: bool
    _child: ChildWorkflowHandle[Any, TurnResult] | None

    if TYPE_CHECKING:

        def _bounded(self) -> bool: ...

        def _build(self) -> str: ...

        def _auto_approves(self, record: dict[str, Any]) -> bool: ...

    async def _run_agent(self) -> None:
        """One agent run at a time, for the oldest queued trigger, when guardrails allow.

        The run is a child workflow that outlives this run if need be (parent close
        policy ABANDON) and sends its result back by signal (`agent_result`), so
        continue-as-new never waits for a model: the running trigger is carried over
        and the next run takes the result.
        """
        while True:
            await workflow.wait_condition(
                lambda: (
                    self._desk.running is not None or (bool(self._desk.queue) and not self._closing)
                )
            )
            if self._desk.running is not None:
                await self._await_result()
                continue
            pause = await self._agent_step()
            if pause is not None:
                # paused (budget used up, breaker open): events keep flowing meanwhile
                self._agent_paused, wait = pause
                try:
                    await workflow.wait_condition(lambda: self._closing, timeout=wait)
                except TimeoutError:
                    pass
                self._agent_paused = None

    async def _agent_step(self) -> tuple[str, timedelta] | None:
        """Start a run for the next trigger if the guardrails allow; else how long to pause."""
        # the worker's settings, read for every run: a changed guardrail applies at once
        await self._refresh_settings()
        if self._closing:
            return None
        gate = self._desk.gate(workflow.now())
        if gate.wait is not None:
            return gate.reason or "paused", gate.wait
        if not gate.run:
            return None
        now = workflow.now()
        trigger = self._desk.take(now)
        calls, tokens = self._desk.turn_budget(now)
        policy = self._desk.policy
        turn = TurnInput(
            member_id=self._book.member_id,
            reply_to=workflow.info().workflow_id,
            trigger=trigger,
            case=member_case(
                self._book, trigger, self._desk.proposals.pending(), rewards=self._rewards
            ),
            model_label=self._desk.model_label,
            max_turns=policy.max_turns,
            calls_left=calls,
            tokens_left=tokens,
            max_proposals=policy.max_proposals_per_run,
            points_cap=policy.points_cap,
        )
        # continue-as-new waits for the start (a few milliseconds), never for the run
        self._agent_busy = True
        try:
            self._child = await workflow.start_child_workflow(
                AgentTurnWorkflow.run,
                turn,
                id=agent_workflow_id(self._book.member_id, trigger["key"]),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
                run_timeout=AGENT_RUN_TIMEOUT,
                static_summary=f"agent: {trigger['kind']} {trigger['event_id']}",
            )
        except WorkflowAlreadyStartedError:
            # a run for this trigger is still going (started before a reset): ask it
            # for its result by signal
            self._child = None
            try:
                await workflow.get_external_workflow_handle_for(
                    AgentTurnWorkflow.run, agent_workflow_id(self._book.member_id, trigger["key"])
                ).signal(AgentTurnWorkflow.reply_by_signal)
            except FailureError:
                pass  # it ended meanwhile: no result comes, the wait times out, a retry runs
        finally:
            self._agent_busy = False
        return None

    async def _hand_over_agent_run(self) -> None:
        """Before continuing as new: a running agent run answers the next run by signal.

        Normally a run's result is its child-completion event in this history; once
        this run is gone only a signal can reach the member.
        """
        child = self._child
        if self._desk.running is None or child is None:
            return
        if not child.done():
            self._agent_busy = True
            try:
                await child.signal(AgentTurnWorkflow.reply_by_signal)
            except FailureError:
                # it has ended, so its completion is on its way into this run
                await workflow.wait_condition(child.done)
            finally:
                self._agent_busy = False
        if child.done():
            # its end is in this run's history: _await_result takes it before we go
            await workflow.wait_condition(lambda: self._desk.running is None)

    async def _await_result(self) -> None:
        """Until the running trigger's result arrives (signal, or this run's child ending)."""
        running = self._desk.running
        assert running is not None
        child = self._child
        if child is not None:
            # this run started it: the child's own end (result, failure or its run
            # timeout) is in this history, no timer needed
            await workflow.wait_condition(lambda: self._desk.running is not running or child.done())
        else:
            # carried over from an earlier run: only its signal can tell
            deadline = parse_iso(running["started_at"]) + AGENT_RUN_TIMEOUT + AGENT_RESULT_GRACE
            try:
                await workflow.wait_condition(
                    lambda: self._desk.running is not running,
                    timeout=max(timedelta(seconds=1), deadline - workflow.now()),
                )
            except TimeoutError:
                pass
        if self._desk.running is not running:
            return  # the signal brought it
        if child is not None and child.done():
            try:
                result = child.result()
            except ChildWorkflowError as error:
                cause = error.cause or error
                result = TurnResult(
                    status="error",
                    model=self._desk.model_label,
                    trigger_key=running["key"],
                    error=str(cause).splitlines()[0][:300],
                )
        else:
            result = TurnResult(
                status="error",
                model=self._desk.model_label,
                trigger_key=running["key"],
                error="the agent run sent no result in time",
            )
        self._take_result(result)

    def _take_result(self, result: TurnResult) -> None:
        if self._bounded():
            result = sane_result(result)
        running = self._desk.running
        if running is None or running["key"] != result.trigger_key:
            return  # a late result of a run this member no longer waits for
        self._child = None
        made = self._desk.finish(
            result, workflow.now(), tier=self._book.s.tier, rewards=self._rewards
        )
        limit = self._desk.policy.auto_approve_max_points
        for record in made:
            if self._auto_approves(record):
                self._apply_decision(
                    record["id"],
                    True,
                    actor=AUTO_APPROVE_POLICY,
                    reason=f"a grant of at most {limit} points is approved by policy",
                    policy_text=f"action=grant_points,max_points={limit}",
                )
        if made:
            self._dirty = True  # the pending count (a search attribute) changed

    async def _refresh_settings(self) -> None:
        try:
            settings = await workflow.execute_local_activity(
                agent_settings,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            settings = self._desk.settings or AgentSettings()
        self._desk.use_settings(settings, workflow.now())

    def _apply_person(self, decision: Decision, at: datetime | None = None) -> DecisionResult:
        """A person's decision, checked: applied as they made it (at `at`, a re-sent one)."""
        return self._apply_decision(
            decision.proposal_id,
            decision.approve,
            actor=decision.actor.strip(),
            reason=decision.reason.strip(),
            policy_text=decision.policy,
            at=at,
        )

    def _apply_decision(
        self,
        proposal_id: str,
        approve: bool,
        *,
        actor: str,
        reason: str,
        policy_text: str | None,
        at: datetime | None = None,
    ) -> DecisionResult:
        now = at or workflow.now()
        record = self._desk.counted(
            self._desk.proposals.decide(
                proposal_id, approve, actor=actor, reason=reason, now=now, policy_text=policy_text
            )
        )
        self._dirty = True
        action, args = record["action"], record["arguments"]
        applied = {"action": action, "arguments": dict(args), "decided_at": record["decided_at"]}
        if not approve:
            return DecisionResult(
                proposal_id, record["status"], False, "rejected; nothing changes", **applied
            )
        kind = OUTBOX_KINDS.get(action)
        effect = f"a {kind} goes out for delivery (see Effects)" if kind else ""
        if action in ("grant_points", "redeem_reward") or (
            action == "change_tier" and workflow.patched(TIER_GRANT_PATCH)
        ):
            entry = self._book.apply_approved(action, args, proposal_id, now, self._build())
            assert entry is not None
            if action in ("grant_points", "redeem_reward") and self._bounded():
                self._desk.guard.note_grant(
                    now,
                    points_of(action, args),
                    by_policy=actor == AUTO_APPROVE_POLICY,
                    policy=self._desk.policy,
                )
            record["ledger_seq"] = entry["seq"]
            if action == "grant_points":
                what = f"{args['points']} points granted"
            elif action == "redeem_reward":
                what = f"{args['name']} given as goodwill; it goes out for delivery (see Effects)"
            else:
                until = (self._book.s.tier_override or {}).get("until")
                what = f"{args['tier']} granted until {until}, tier now {self._book.s.tier}"
            return DecisionResult(
                proposal_id,
                record["status"],
                True,
                f"approved: {what} (ledger #{entry['seq']})" + (f"; {effect}" if effect else ""),
                entry["seq"],
                **applied,
            )
        return DecisionResult(proposal_id, record["status"], True, f"approved: {effect}", **applied)
