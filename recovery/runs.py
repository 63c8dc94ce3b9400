"""Facts about one run of a member's chain, read from its history: its input, its
start and close, the runs before and after it, the reset that made it, the patches its
builds took, and the chain of runs itself (the one part that talks to the server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter

from recovery.found import if_found
from workflows.member_messages import BOUNDED_PATCH, HOLD_PATCH, REWARD_EFFECTS_PATCH, MemberInput
from workflows.rules import MemberBook

PATCH_MARKER = "core_patch"
_converter = DataConverter.default.payload_converter


def aware(moment: datetime) -> datetime:
    """A history time as an aware UTC datetime (protobuf gives naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def decode(payloads: Any) -> Any:
    items = list(payloads)
    if not items:
        return None
    try:
        return _converter.from_payloads(items[:1])[0]
    except Exception:  # a payload nobody can decode: the workflow rejected it too
        return None


def bounded_run(history: WorkflowHistory) -> bool:
    """The run queues events and applies at most MAX_EVENTS_PER_TASK per task (it took
    the BOUNDED_PATCH branch: its first task recorded the patch marker)."""
    return _patched(history, BOUNDED_PATCH)


def as_run_applied(book: MemberBook, history: WorkflowHistory) -> MemberBook:
    """`book` with the rules' switches set as the run's build applied them (the patches
    its first task took): early refunds held and decisions bound (HOLD_PATCH), rewards
    handed to the outbox and redemption_cancelled events taken (REWARD_EFFECTS_PATCH).
    A new switch of the rules is set here, once, for every reader of history."""
    patches = patches_of(history)
    book.hold = HOLD_PATCH in patches
    book.reward_effects = book.cancel_events = REWARD_EFFECTS_PATCH in patches
    return book


def patches_of(history: WorkflowHistory) -> set[str]:
    """The patches the run took (its patch markers)."""
    found = set()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != PATCH_MARKER or "patch-data" not in attrs.details:
            continue
        data = decode(attrs.details["patch-data"].payloads)
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            found.add(data["id"])
    return found


def _patched(history: WorkflowHistory, patch_id: str) -> bool:
    return patch_id in patches_of(history)


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


def reset_cut(history: WorkflowHistory) -> int | None:
    """Where a reset run's own history begins: the event id of the failed task that
    marks the reset (None: no reset made this run)."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            if attrs.base_run_id and attrs.new_run_id:
                return int(event.event_id)
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


async def fetch_run(client: Client, workflow_id: str, run_id: str) -> WorkflowHistory | None:
    """The history of one run; None when the server no longer keeps it (past the
    namespace's retention, or deleted)."""
    return await if_found(client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history())


def kept_from(chain: list[WorkflowHistory]) -> datetime | None:
    """When the oldest run still kept started, if earlier runs of the chain are gone."""
    return started_at(chain[0]) if chain and previous_run(chain[0]) else None


def kept_note(since: datetime, done: str = "checked") -> str:
    """What a check (or a timeline: `done` "shown") of a chain whose earliest runs are
    gone leaves out."""
    text = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"history before {text} no longer kept: {done} from {text}"


async def chain_histories(
    client: Client,
    workflow_id: str,
    *,
    run_id: str,
    stop_at: str | None = None,
    missing_ok: bool = False,
) -> list[WorkflowHistory]:
    """Histories of a chain of runs, oldest first, following continue-as-new links back
    from `run_id` to `stop_at` (default: the first run). With `missing_ok`, the walk
    stops at a run the server no longer keeps (`kept_from` tells); else that raises."""
    runs: list[WorkflowHistory] = []
    current: str = run_id
    while True:
        history = await fetch_run(client, workflow_id, current)
        if history is None:
            if missing_ok and runs:
                break
            raise LookupError(f"run {current} of {workflow_id} is no longer kept by the server")
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
