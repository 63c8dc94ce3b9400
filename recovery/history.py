"""Reading member histories: what a member received, across every run of its chain."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.update.v1 import Request
from temporalio.client import WorkflowHistory

from recovery.runs import _converter, bounded_run, decode, started_at
from workflows.agent_io import AGENT_SETTINGS_ACTIVITY
from workflows.agent_policy import AgentPolicy
from workflows.contract import (
    AGENT_TURN_WORKFLOW,
    SIGNAL_AGENT_RESULT,
    SIGNAL_EVENT,
    SIGNAL_EVENTS,
    UPDATE_ADJUST,
    UPDATE_CANCEL_REDEMPTION,
    UPDATE_DECIDE,
    UPDATE_REDEEM,
)
from workflows.member_messages import (
    DRAIN_SUMMARY,
    MAX_EVENTS_PER_TASK,
    TURN_STATUSES,
    Adjustment,
    CancelRedemption,
    Decision,
    RedeemRequest,
)
from workflows.proposals import content_digest

SIGNAL_NAMES = (SIGNAL_EVENT, SIGNAL_EVENTS)
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class Approval:
    """An approved proposal the member applied to its book (goodwill points, a tier).

    `decision` is the person's request (None: approved by policy, from the agent
    run's result); `decided_at` is the workflow time of the decision (ISO), when the
    history says it."""

    proposal_id: str
    action: str
    arguments: dict[str, Any]
    decided_at: str | None = None
    decision: Decision | None = None


@dataclass(frozen=True)
class Decided:
    """A person's decision the member took (approve or reject, any action), with what
    it decided: a rollback re-sends it, bound to that content, at its first time."""

    decision: Decision
    status: str
    action: str
    arguments: dict[str, Any]
    decided_at: str | None

    def resend(self) -> Decision:
        return dataclasses.replace(
            self.decision,
            digest=self.decision.digest or content_digest(self.action, self.arguments),
            decided_at=self.decision.decided_at or self.decided_at,
        )


@dataclass(frozen=True)
class Received:
    """One thing a member received: an event (by signal) or an adjustment (by update)."""

    kind: str  # "event", "adjust", "approval", "redeem" or "cancel_redemption"
    payload: Any  # the raw event, the Adjustment, the Approval, RedeemRequest, CancelRedemption
    at: datetime  # when the server recorded it
    event_id: int = 0  # its position in the run's history
    build: str | None = None  # the build whose workflow task applied it (None: not yet)
    applied_at: int = 0  # event id of that task's completion (0: not yet)
    run_started: datetime | None = None  # when its run started: tells runs apart

    @property
    def at_utc(self) -> datetime:
        return self.at.replace(tzinfo=UTC) if self.at.tzinfo is None else self.at

    def key(self) -> str:
        """Identity across runs: reapplied copies of a signal have the same key; an
        approval is known by its proposal id (the member applies it once)."""
        if isinstance(self.payload, Approval):
            return self.kind + self.payload.proposal_id
        if isinstance(self.payload, Decided):
            return self.kind + self.payload.decision.proposal_id
        body = (
            self.payload.__dict__
            if isinstance(self.payload, (Adjustment, RedeemRequest, CancelRedemption))
            else self.payload
        )
        return self.kind + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class AgentRun:
    """An agent run's result as the member took it, with the guardrails then in force:
    what the policy approved by itself follows from it (see `Rebuild`)."""

    trigger_key: str
    ok: bool
    drafts: list[dict[str, Any]]
    policy: AgentPolicy
    capped: bool = False  # a bounded run: the daily caps on grants apply


def _agent_run(value: Any, policy: AgentPolicy, *, capped: bool = False) -> AgentRun | None:
    if not isinstance(value, dict):
        return None
    status = value.get("status")
    drafts = value.get("drafts") or []
    if not isinstance(drafts, list) or not all(isinstance(d, dict) for d in drafts):
        status, drafts = "error", []  # workflows.member.sane_result: a malformed result
    # DeskState.finish: a failed run, or one out of budget before any call, makes nothing
    ok = (
        status in TURN_STATUSES
        and status not in ("model_error", "error")
        and not (status == "budget" and not value.get("model_calls"))
    )
    return AgentRun(str(value.get("trigger_key") or ""), ok, list(drafts), policy, capped)


class _Reader:
    """Walks one run's history, giving each item the workflow task that applied it.

    Signals and agent results are applied by the next task to complete; an update is
    accepted (and a decision completes) in events written after the completion of the
    task that ran it, so those belong to the task before them.

    In a bounded run (see `bounded_run`) events wait in an inbox, as in the member: a
    task applies at most MAX_EVENTS_PER_TASK of them, after the agent results and
    updates it ran, and only when no drain timer is pending (or it fired); a task that
    leaves events behind starts one."""

    def __init__(self, *, bounded: bool = False) -> None:
        self.pending: list[Received] = []
        self.build: str | None = None
        self.applied_at = 0
        self.task_started: datetime | None = None
        self.decisions: dict[str, Decision] = {}  # update id -> the decide request
        self.admitted: dict[str, Request] = {}  # update id -> a reapplied update's request
        self.policy = AgentPolicy()
        self.bounded = bounded
        self.inbox: list[Received] = []
        self.drained: list[Received] = []  # this task's batch, given after its updates
        self.drain_timers: set[int] = set()
        self.drain_waiting = False  # a drain timer is pending
        self.drain_fired = False

    def read(self, history: WorkflowHistory) -> Iterator[Received]:
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                yield from self._drained()
                self.task_started = _time(event)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                attrs = event.workflow_task_completed_event_attributes
                self.build = attrs.deployment_version.build_id or None
                self.applied_at = event.event_id
                budget = MAX_EVENTS_PER_TASK
                for group in _by_signal(self.pending):
                    if self.bounded and group[0].kind == "event":
                        # MemberWorkflow._receive: at once within the budget when nothing
                        # waits before it, else into the inbox
                        if self.inbox or len(group) > budget:
                            self.inbox.extend(group)
                            continue
                        budget -= len(group)
                    for item in group:
                        at = (
                            self.task_started
                            if item.kind == "agent" and self.task_started
                            else None
                        )
                        yield dataclasses.replace(
                            item, build=self.build, applied_at=self.applied_at, at=at or item.at
                        )
                self.pending = []
                if self.bounded:
                    self._drain(budget)
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
                self._settings(event)
            elif kind in _UPDATE_EVENTS:
                for item in self._update(event):
                    yield dataclasses.replace(item, build=self.build, applied_at=self.applied_at)
            elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
                if _summary(event) == DRAIN_SUMMARY:
                    self.drain_timers.add(int(event.timer_started_event_attributes.timer_id))
            elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
                if int(event.timer_fired_event_attributes.timer_id) in self.drain_timers:
                    self.drain_fired = True
            else:
                self.pending.extend(self._signal(event))
        yield from self._drained()
        yield from self.inbox
        yield from self.pending

    def _drain(self, budget: int) -> None:
        """What the task that just completed took from the inbox (MemberWorkflow._drain_inbox):
        the rest of its budget, unless a drain timer is pending and did not fire."""
        if not self.inbox or (self.drain_waiting and not self.drain_fired):
            return
        batch = self.inbox[:budget]
        del self.inbox[:budget]
        self.drained = [
            dataclasses.replace(item, build=self.build, applied_at=self.applied_at)
            for item in batch
        ]
        self.drain_waiting = bool(self.inbox)
        self.drain_fired = False

    def _drained(self) -> Iterator[Received]:
        yield from self.drained
        self.drained = []

    def _signal(self, event: HistoryEvent) -> Iterator[Received]:
        at = _time(event)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == SIGNAL_AGENT_RESULT:
                run = _agent_run(decode(attrs.input.payloads), self.policy, capped=self.bounded)
                if run is not None:
                    yield Received("agent", run, at, event.event_id)
                return
            if attrs.signal_name not in SIGNAL_NAMES:
                return
            value = decode(attrs.input.payloads)
            if attrs.signal_name == SIGNAL_EVENTS and isinstance(value, list):
                for item in value:
                    yield Received("event", item, at, event.event_id)
            else:
                yield Received("event", value, at, event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            child = event.child_workflow_execution_completed_event_attributes
            if child.workflow_type.name != AGENT_TURN_WORKFLOW:
                return
            run = _agent_run(decode(child.result.payloads), self.policy, capped=self.bounded)
            if run is not None:
                yield Received("agent", run, at, event.event_id)

    def _update(self, event: HistoryEvent) -> Iterator[Received]:
        at = _time(event)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
            # an update the server reapplied (after a reset): its request is here, and
            # its acceptance refers back to it
            admitted = event.workflow_execution_update_admitted_event_attributes.request
            self.admitted[admitted.meta.update_id] = admitted
            return
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            request = accepted.accepted_request
            if not request.meta.update_id:
                request = self.admitted.pop(accepted.protocol_instance_id, request)
            args = list(request.input.args.payloads)
            try:
                if request.input.name == UPDATE_ADJUST:
                    adjustment = _converter.from_payloads(args, [Adjustment])[0]
                    yield Received("adjust", adjustment, at, event.event_id)
                elif request.input.name == UPDATE_REDEEM:
                    redeem = _converter.from_payloads(args, [RedeemRequest])[0]
                    yield Received("redeem", redeem, at, event.event_id)
                elif request.input.name == UPDATE_CANCEL_REDEMPTION:
                    cancel = _converter.from_payloads(args, [CancelRedemption])[0]
                    yield Received("cancel_redemption", cancel, at, event.event_id)
                elif request.input.name == UPDATE_DECIDE:
                    decision = _converter.from_payloads(args, [Decision])[0]
                    self.decisions[request.meta.update_id] = decision
            except Exception:
                return
            return
        attrs = event.workflow_execution_update_completed_event_attributes
        decision = self.decisions.pop(attrs.meta.update_id, None)
        if decision is None or not attrs.outcome.HasField("success"):
            return
        result = decode(attrs.outcome.success.payloads)
        if not isinstance(result, dict):
            return
        if decision.actor and not str(decision.actor).startswith("policy:"):
            record = Decided(
                decision,
                str(result.get("status") or ""),
                str(result.get("action") or ""),
                dict(result.get("arguments") or {}),
                result.get("decided_at"),
            )
            yield Received("decision", record, at, event.event_id)
        # applied to the book: the workflow recorded the ledger entry it posted
        if result.get("ledger_seq") is None:
            return
        approval = Approval(
            result["proposal_id"],
            result.get("action") or "",
            dict(result.get("arguments") or {}),
            result.get("decided_at"),
            decision,
        )
        yield Received("approval", approval, at, event.event_id)

    def _settings(self, event: HistoryEvent) -> None:
        """The guardrails the member uses: the last settings local activity result."""
        details = event.marker_recorded_event_attributes.details
        if event.marker_recorded_event_attributes.marker_name != LOCAL_ACTIVITY_MARKER:
            return
        data = decode(details["data"].payloads) if "data" in details else None
        if not isinstance(data, dict) or data.get("activity_type") != AGENT_SETTINGS_ACTIVITY:
            return
        settings = decode(details["result"].payloads) if "result" in details else None
        if isinstance(settings, dict):
            self.policy = AgentPolicy.from_dict(settings.get("policy"))


_UPDATE_EVENTS = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
)


def _by_signal(items: list[Received]) -> Iterator[list[Received]]:
    """Items in order, those of one signal (a bulk signal's events) together."""
    group: list[Received] = []
    for item in items:
        if group and (item.event_id != group[0].event_id or item.kind != group[0].kind):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def _summary(event: HistoryEvent) -> str | None:
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return None
    value = decode([event.user_metadata.summary])
    return value if isinstance(value, str) else None


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime().replace(tzinfo=None)


def received(history: WorkflowHistory, *, approvals: bool = False) -> Iterator[Received]:
    """What the run received, in the order the workflow applied it, each with the build
    of the workflow task that applied it; with `approvals`, also the approved proposals
    and agent results ("approval" and "agent" items) that rebuilding its state needs."""
    start = started_at(history)
    items = (
        dataclasses.replace(i, run_started=start)
        for i in _Reader(bounded=bounded_run(history)).read(history)
    )
    return items if approvals else (i for i in items if i.kind in ("event", "adjust"))


def received_events(history: WorkflowHistory) -> Iterator[Any]:
    """Every raw event the run received by signal, in order (bulk signals flattened)."""
    for item in received(history):
        if item.kind == "event":
            yield item.payload
