"""A member's timeline, stitched from the histories of its runs (no Qt).

A member is one chain of runs: continue-as-new starts the next, and a reset starts
a new run from a point in an old one (the bad run drops out of the chain). The
timeline walks that chain back from the current run and lists, by time, what
happened: runs starting, events and adjustments received, builds taking over,
and the agent's proposals and their decisions (from the member's state).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from temporalio.api.enums.v1 import EventType

from desktop.member_detail_text import short_run
from recovery.history import Received, received
from recovery.runs import fetch_run, previous_run, reset_base, reset_cut, started_at
from workflows.contract import AMOUNT_FIELDS
from workflows.proposals import arguments_text

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHistory

Row = dict[str, Any]
# a member's runs are read back only this far: each is one history fetch
MAX_RUNS = 20


class Chain(NamedTuple):
    """The runs a timeline shows: (run id, history), oldest first."""

    runs: list[tuple[str, WorkflowHistory]]
    complete: bool  # every run back to the member's first
    # when earlier runs are no longer kept (retention): the oldest kept run's start
    kept_from: datetime | None = None


async def fetch_chain(
    client: Client,
    workflow_id: str,
    current: str,
    cache: dict[str, WorkflowHistory],
    *,
    max_runs: int = MAX_RUNS,
) -> Chain:
    """The chain's latest `max_runs` runs up to the `current` run, oldest first; it
    stops early at a run the server no longer keeps.

    Closed runs never change, so `cache` keeps theirs; only the current run is
    fetched again on each refresh.
    """
    runs: list[tuple[str, WorkflowHistory]] = []
    run_id: str | None = current
    while run_id and len(runs) < max_runs:
        history = cache.get(run_id)
        if history is None:
            history = await fetch_run(client, workflow_id, run_id)
            if history is None and runs:  # past retention: show what is kept, say so
                runs.reverse()
                return Chain(runs, False, started_at(runs[0][1]))
            if history is None:
                raise LookupError(f"run {run_id} of {workflow_id} is no longer kept")
            if run_id != current:
                cache[run_id] = history
        runs.append((run_id, history))
        run_id = previous_run(history)
    runs.reverse()
    return Chain(runs, not run_id)


class TimelineBuilder:
    """Timeline rows, oldest first: {key, at, kind, detail, build, run_id}.

    Fed one run at a time (oldest first), so a caller on the GUI thread can let the
    event loop breathe between runs; runs are numbered from `first_number` (when
    earlier ones are left out).
    """

    def __init__(self, *, first_number: int = 1) -> None:
        self._number = first_number
        self._rows: list[Row] = []
        self._seen: set[str] = set()
        self._build: str | None = None

    def add_run(self, run_id: str, history: WorkflowHistory) -> None:
        self._rows.append(_run_row(self._number, run_id, history))
        self._number += 1
        builds = list(_builds(history))
        for item in received(history, approvals=True):
            if item.kind not in _TIMELINE_KINDS:
                continue  # approvals and agent runs show as proposals
            key = item.key()
            if key in self._seen:
                continue  # a reset reapplies signals: the copy is the same event
            self._seen.add(key)
            self._rows.append(
                {
                    "key": f"r:{key}",
                    "at": item.at_utc,
                    "kind": _TIMELINE_KINDS[item.kind],
                    "detail": _describe(item),
                    "build": _applied_by(item, builds),
                    "run_id": run_id,
                }
            )
        for _, at, build in builds:
            if build != self._build:
                self._rows.append(
                    {
                        "key": f"b:{run_id}:{at.isoformat()}:{build}",
                        "at": at,
                        "kind": "build",
                        "detail": f"build {build} takes over"
                        + (f" from {self._build}" if self._build else ""),
                        "build": build,
                        "run_id": run_id,
                    }
                )
                self._build = build

    def rows(self, proposals: Iterable[Row]) -> list[Row]:
        """Every run's rows with the proposals and their decisions, by time."""
        rows = [*self._rows, *_proposal_rows(proposals)]
        rows.sort(key=lambda r: r["at"])
        return rows


def _run_row(number: int, run_id: str, history: WorkflowHistory) -> Row:
    at = _utc(history.events[0].event_time.ToDatetime())
    base = reset_base(history)
    if base:
        # when the reset was made, not when the run it copied began: what the member
        # received before the reset point is listed before it
        cut = reset_cut(history)
        marks = (e for e in history.events if e.event_id == cut)
        at = _utc(next(marks).event_time.ToDatetime())
        kind, detail = "reset", f"run {number} reset from run {short_run(base)}"
    elif previous_run(history):
        kind, detail = "run", f"run {number} continued as new"
    else:
        kind, detail = "run", f"run {number}: member started"
    return {
        "key": f"run:{run_id}",
        "at": at,
        "kind": kind,
        "detail": detail,
        "build": "",
        "run_id": run_id,
    }


def _builds(history: WorkflowHistory) -> Iterator[tuple[int, datetime, str]]:
    """(event id, time, build) of each completed workflow task that names its build."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            version = event.workflow_task_completed_event_attributes.deployment_version
            if version.build_id:
                yield event.event_id, _utc(event.event_time.ToDatetime()), version.build_id


def _applied_by(item: Received, builds: list[tuple[int, datetime, str]]) -> str:
    """The build that applied what the member received.

    A signal is applied by the next task (`received` says which); an update is
    accepted after the task that ran its handler completed, so that task is the
    last one before it.
    """
    if item.kind == "event":
        return item.build or ""
    earlier = [build for event_id, _, build in builds if event_id < item.event_id]
    return earlier[-1] if earlier else ""


def _proposal_rows(proposals: Iterable[Row]) -> Iterator[Row]:
    for p in proposals:
        created = _parse(p.get("created_at"))
        if created is not None:
            yield {
                "key": f"p:{p['id']}",
                "at": created,
                "kind": "proposal",
                "detail": f"{p['action']} {_arguments(p)} proposed: {p.get('reason') or ''}".strip(),
                "build": "",
                "run_id": "",
            }
        decided = _parse(p.get("decided_at"))
        if decided is not None and p.get("status") != "pending":
            yield {
                "key": f"d:{p['id']}",
                "at": decided,
                "kind": "decision",
                "detail": f"{p['action']} {p['status']} by {p.get('decided_by') or '?'}: "
                f"{p.get('decision_reason') or ''}".strip(),
                "build": "",
                "run_id": "",
            }


def _arguments(proposal: Row) -> str:
    """A proposal's arguments on one timeline line (a message's text is in its detail)."""
    action = proposal.get("action")
    return (
        ""
        if action == "message_member"
        else arguments_text(action, proposal.get("arguments") or {})
    )


def _describe_event(raw: Any) -> str:
    if not isinstance(raw, dict):
        return "unreadable event"
    kind = raw.get("type", "?")
    text = f"{kind} {raw.get('event_id', '?')}"
    for name in AMOUNT_FIELDS:
        amount = raw.get(name)
        if isinstance(amount, int):
            text += f" ${amount / 100:,.2f}"
    if kind == "refund" and raw.get("refers_to"):
        text += f" of {raw['refers_to']}"
    if kind == "redemption_cancelled" and raw.get("refers_to"):
        text += f" of redemption {raw['refers_to']}"
    return text


# what a member received, as the timeline names it
_TIMELINE_KINDS = {
    "event": "event",
    "adjust": "adjustment",
    "redeem": "redemption",
    "cancel_redemption": "redemption",
}


def _describe(item: Received) -> str:
    payload = item.payload
    if item.kind == "event":
        return _describe_event(payload)
    if item.kind == "redeem":
        return f"redeem {payload.reward_id} ({payload.request_id}) by {payload.actor}"
    if item.kind == "cancel_redemption":
        return f"cancel redemption {payload.request_id} by {payload.actor}: {payload.reason}"
    return _describe_adjustment(payload)


def _describe_adjustment(adjustment: Any) -> str:
    return f"{adjustment.points:+,} points by {adjustment.actor}: {adjustment.reason}"


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
