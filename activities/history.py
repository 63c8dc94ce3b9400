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
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter

from workflows.member import SIGNAL_EVENT, SIGNAL_EVENTS, Adjustment, MemberInput

SIGNAL_NAMES = (SIGNAL_EVENT, SIGNAL_EVENTS)
_converter = DataConverter.default.payload_converter


@dataclass(frozen=True)
class Received:
    """One thing a member received: an event (by signal) or an adjustment (by update)."""

    kind: str  # "event" or "adjust"
    payload: Any  # the raw event, or the Adjustment
    at: datetime  # when the server recorded it
    event_id: int = 0  # its position in the run's history
    build: str | None = None  # the build whose workflow task applied it (None: not yet)
    applied_at: int = 0  # event id of that task's completion (0: not yet)

    @property
    def at_utc(self) -> datetime:
        return self.at.replace(tzinfo=UTC) if self.at.tzinfo is None else self.at

    def key(self) -> str:
        """Identity across runs: reapplied copies of a signal have the same key."""
        body = self.payload.__dict__ if isinstance(self.payload, Adjustment) else self.payload
        return self.kind + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def _decode(payloads: Any) -> Any:
    items = list(payloads)
    if not items:
        return None
    try:
        return _converter.from_payloads(items[:1])[0]
    except Exception:  # a payload nobody can decode: the workflow rejected it too
        return None


def _received(event: HistoryEvent) -> Iterator[Received]:
    at = event.event_time.ToDatetime().replace(tzinfo=None)
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        attrs = event.workflow_execution_signaled_event_attributes
        if attrs.signal_name not in SIGNAL_NAMES:
            return
        value = _decode(attrs.input.payloads)
        if attrs.signal_name == SIGNAL_EVENTS and isinstance(value, list):
            for item in value:
                yield Received("event", item, at, event.event_id)
        else:
            yield Received("event", value, at, event.event_id)
    elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        if request.input.name != "adjust":
            return
        try:
            adjustment = _converter.from_payloads(list(request.input.args.payloads), [Adjustment])[
                0
            ]
        except Exception:
            return
        yield Received("adjust", adjustment, at, event.event_id)


def received(history: WorkflowHistory) -> Iterator[Received]:
    """What the run received, each with the build of the workflow task that applied it."""
    pending: list[Received] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            build = event.workflow_task_completed_event_attributes.deployment_version.build_id
            for item in pending:
                yield dataclasses.replace(item, build=build or None, applied_at=event.event_id)
            pending = []
        else:
            pending.extend(_received(event))
    yield from pending


def received_events(history: WorkflowHistory) -> Iterator[Any]:
    """Every raw event the run received by signal, in order (bulk signals flattened)."""
    for item in received(history):
        if item.kind == "event":
            yield item.payload


def run_input(history: WorkflowHistory) -> MemberInput:
    start = history.events[0].workflow_execution_started_event_attributes
    value: MemberInput = _converter.from_payloads(list(start.input.payloads), [MemberInput])[0]
    return value


def started_at(history: WorkflowHistory) -> datetime:
    return history.events[0].event_time.ToDatetime()


def reset_base(history: WorkflowHistory) -> str | None:
    """The run this run was reset from, if a reset created it."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            if attrs.base_run_id and attrs.new_run_id:
                return attrs.base_run_id
    return None


def previous_run(history: WorkflowHistory) -> str | None:
    start = history.events[0].workflow_execution_started_event_attributes
    return start.continued_execution_run_id or None


def next_run(history: WorkflowHistory) -> str | None:
    """The run this run continued as new into, if it did."""
    last = history.events[-1] if history.events else None
    if last is None or last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None


_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def closed_at(history: WorkflowHistory) -> datetime | None:
    """When the run closed (None: still open)."""
    last = history.events[-1] if history.events else None
    if last is None or last.event_type not in _CLOSED:
        return None
    return last.event_time.ToDatetime()


async def chain_histories(
    client: Client, workflow_id: str, *, run_id: str, stop_at: str | None = None
) -> list[WorkflowHistory]:
    """Histories of a chain of runs, oldest first, following continue-as-new links back
    from `run_id` to `stop_at` (default: the first run)."""
    runs: list[WorkflowHistory] = []
    current: str = run_id
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=current).fetch_history()
        runs.append(history)
        this_run = history.events[0].workflow_execution_started_event_attributes
        if stop_at is not None and current == stop_at:
            break
        previous = this_run.continued_execution_run_id
        if not previous:
            if stop_at is not None:
                raise LookupError(f"run {stop_at} is not in the chain of {workflow_id}")
            break
        current = previous
    runs.reverse()
    return runs
