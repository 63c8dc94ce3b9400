"""Sending events to member workflows: from JSON Lines, generated traffic or code."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from runtime.connect import Target
from runtime.members import closed_how
from workflows.events import EventError, parse_event, valid_member_id
from workflows.member import (
    SIGNAL_EVENT,
    SIGNAL_EVENTS,
    MemberInput,
    MemberWorkflow,
    member_workflow_id,
)

log = logging.getLogger(__name__)

BULK_CHUNK = 500
# Temporal refuses a payload over 2 MB (the blob size limit) and a gRPC message over
# 4 MB; a line longer than this could never be sent
MAX_LINE_BYTES = 2_000_000
# No valid event comes near this (text is at most 10,000 characters, 12 bytes each when
# escaped); a bigger one carries junk, so it is rejected here and never sent: every
# signal, and every bulk chunk of them, stays far below Temporal's payload limit
MAX_EVENT_BYTES = 256 * 1024
BULK_CHUNK_BYTES = 1024 * 1024
SYNC_PATIENCE_S = 120.0
# a sync unanswered this long is sent again: a busy server can lose an update it took
# (its update registry lives in a cache that evicts under load), and its caller would
# otherwise wait forever; a sync that is merely slow (a member draining a flood) loses
# nothing by being asked again
SYNC_ATTEMPT_S = 30.0


@dataclass
class Reject:
    line: int
    event_id: str | None
    reason: str
    sent: bool  # True when the member workflow got it too (and lists it in `rejections`)
    # a conflict: the line that used this event id first, with other content
    first_line: int | None = None


@dataclass
class FeedReport:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    members: int = 0
    signals: int = 0
    seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates_in_input": self.duplicates,
            "members": self.members,
            "signals": self.signals,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.accepted / self.seconds, 1) if self.seconds else None,
            "rejects": [r.__dict__ for r in self.rejects],
        }


@dataclass
class Batch:
    """Events grouped per member, in input order, after checking each one."""

    by_member: dict[str, list[Any]] = field(default_factory=dict)
    report: FeedReport = field(default_factory=FeedReport)
    # beside each member's events: the line it came from and what `check` counted it as
    # (accepted, duplicate or rejected: a reject that is sent too)
    origin: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, member_id: str, raw: Any, line: int, counted: str) -> None:
        self.by_member.setdefault(member_id, []).append(raw)
        self.origin.setdefault(member_id, []).append((line, counted))

    def not_sent(self, closed: MemberClosed) -> None:
        """The member's events from `closed.sent` on were not sent: each becomes a reject
        with the reason (the feed's rejects log lists them, to feed again once the member
        is repaired), and the member leaves the batch (nothing more to wait for)."""
        report, reason = self.report, str(closed)
        earlier = {r.line: r for r in report.rejects}
        events = self.by_member.pop(closed.member_id)
        origin = self.origin.pop(closed.member_id)
        for raw, (line, counted) in list(zip(events, origin, strict=True))[closed.sent :]:
            if counted == "rejected":
                earlier[line].sent = False
                continue
            report.accepted -= counted == "accepted"
            report.duplicates -= counted == "duplicate"
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            report.rejects.append(Reject(line, event_id, reason, False))
        report.rejected = len(report.rejects)


class MemberClosed(Exception):
    """The member's workflow is closed (terminated, failed or timed out): the feed does
    not start it again, since a new run would start from no state at all."""

    def __init__(self, member_id: str, how: str, sent: int) -> None:
        super().__init__(
            f"member {member_id}'s workflow is {how}: not started again from empty; "
            "repair it (reset), then feed this again"
        )
        self.member_id = member_id
        self.sent = sent  # events of the member sent before it was found closed


def read_lines(stream: Iterable[bytes] | Iterable[str]) -> Iterable[tuple[int, object]]:
    """Yield (line number, parsed JSON or an EventError) for each non-blank line.

    Read as bytes, a line that is not UTF-8 is one reject, not the end of the feed.
    """
    for number, raw_line in enumerate(stream, start=1):
        if len(raw_line) > MAX_LINE_BYTES:
            yield number, EventError(f"line is {len(raw_line):,} bytes, over the 2 MB limit")
            continue
        try:
            line = raw_line.decode("utf-8") if isinstance(raw_line, bytes) else str(raw_line)
        except UnicodeDecodeError as error:
            yield number, EventError(f"not UTF-8 text ({error.reason} at byte {error.start})")
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            yield number, EventError(f"invalid JSON: {error.msg} at column {error.colno}")
        except (ValueError, RecursionError) as error:  # 5,000-digit numbers, deep nesting
            yield number, EventError(f"unreadable JSON ({type(error).__name__})")


def check(numbered: Iterable[tuple[int, object]]) -> Batch:
    batch = Batch()
    # member + event id -> (the line that used it first, its content's fingerprint)
    first_seen: dict[str, tuple[int, str]] = {}
    for number, raw in numbered:
        if isinstance(raw, EventError):
            batch.report.rejects.append(Reject(number, None, raw.reason, False))
            continue
        member = raw.get("member_id") if isinstance(raw, dict) else None
        size = encoded_size(raw)
        try:
            event = parse_event(raw)
            if size > MAX_EVENT_BYTES:
                raise EventError(
                    f"event is {size:,} bytes, over the {MAX_EVENT_BYTES:,}-byte limit",
                    event.event_id,
                )
        except EventError as error:
            # still deliver it when we know the member, so the member records it too
            # (unless it is too big to send)
            sendable = valid_member_id(member) and size <= MAX_EVENT_BYTES
            batch.report.rejects.append(Reject(number, error.event_id, error.reason, sendable))
            if sendable:
                batch.add(str(member), raw, number, "rejected")
            continue
        key = f"{event.member_id}\x00{event.event_id}"
        first = first_seen.get(key)
        counted = "rejected"
        if first is None:
            first_seen[key] = (number, event.fingerprint)
            batch.report.accepted += 1
            counted = "accepted"
        elif first[1] == event.fingerprint:
            batch.report.duplicates += 1  # a resend: harmless, the member counts it once
            counted = "duplicate"
        else:
            # the same id for another event: one of the two is wrong, and the member
            # keeps the first; sent too, so the member records the conflict as well
            reason = (
                f"event id {event.event_id!r} was used on line {first[0]} with other "
                "content: a conflict, not a repeat"
            )
            batch.report.rejects.append(Reject(number, event.event_id, reason, True, first[0]))
        batch.add(event.member_id, raw, number, counted)
    batch.report.rejected = len(batch.report.rejects)
    batch.report.members = len(batch.by_member)
    return batch


def encoded_size(raw: object) -> int:
    """Bytes of the event as a signal payload (the SDK's JSON: compact, ASCII-escaped)."""
    try:
        return len(json.dumps(raw, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        return 0  # not JSON at all: parse_event rejects it on its own terms


# bulk signals in flight per member before the feeder waits for them to be applied
BULK_WINDOW = 4


def bulk_chunks(events: list[Any]) -> list[list[Any]]:
    """Consecutive runs of at most BULK_CHUNK events and BULK_CHUNK_BYTES bytes."""
    chunks: list[list[Any]] = []
    current: list[Any] = []
    size = 0
    for event in events:
        event_size = encoded_size(event) + 1
        if current and (len(current) >= BULK_CHUNK or size + event_size > BULK_CHUNK_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(event)
        size += event_size
    if current:
        chunks.append(current)
    return chunks


# told how many events one signal carried, once it is sent
Progress = Callable[[int], None]


async def send_member(
    client: Client,
    target: Target,
    member_id: str,
    events: list[Any],
    *,
    bulk: bool,
    progress: Progress | None = None,
) -> int:
    """Send one member's events in order by signal-with-start; returns signals sent.
    A member whose workflow is closed is not started again (MemberClosed is raised).

    Bulk chunks go BULK_WINDOW at a time, each window applied before the next is sent:
    signals that pile up reach the member in one workflow task, and thousands of events
    in one task outlast the SDK's deadlock detector (2 s) on a busy machine, after which
    the member applied nothing more."""
    chunks: list[tuple[str, Any]]
    if bulk:
        chunks = [(SIGNAL_EVENTS, chunk) for chunk in bulk_chunks(events)]
    else:
        chunks = [(SIGNAL_EVENT, event) for event in events]
    done = 0  # events sent
    for sent, (name, payload) in enumerate(chunks, start=1):
        try:
            if bulk and sent > 1 and (sent - 1) % BULK_WINDOW == 0:
                await _sync(client.get_workflow_handle(member_workflow_id(member_id)))
            await client.start_workflow(
                MemberWorkflow.run,
                MemberInput(member_id=member_id),
                id=member_workflow_id(member_id),
                task_queue=target.task_queue,
                start_signal=name,
                start_signal_args=[payload],
                # a member runs for ever: a closed one was ended by someone or something
                # (terminated, history over the server's limit), and a new run would
                # start from nothing, its points gone
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except (WorkflowAlreadyStartedError, RPCError) as error:
            if isinstance(error, RPCError) and error.status != RPCStatusCode.NOT_FOUND:
                raise
            raise MemberClosed(member_id, await closed_how(client, member_id), done) from None
        done += len(payload) if bulk else 1
        if progress is not None:
            progress(len(payload) if bulk else 1)
    return len(chunks)


async def deliver(
    client: Client,
    target: Target,
    batch: Batch,
    *,
    bulk: bool = False,
    concurrency: int = 64,
    progress: Progress | None = None,
) -> FeedReport:
    """Send every member's events (members in parallel, each member in order);
    `progress` hears of every signal sent."""
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(member_id: str, events: list[Any]) -> int | MemberClosed:
        async with gate:
            try:
                return await send_member(
                    client, target, member_id, events, bulk=bulk, progress=progress
                )
            except MemberClosed as closed:
                return closed

    results = await asyncio.gather(*(one(m, ev) for m, ev in batch.by_member.items()))
    counts = [r for r in results if isinstance(r, int)]
    for closed in (r for r in results if isinstance(r, MemberClosed)):
        log.warning("%s", closed)
        batch.not_sent(closed)
    batch.report.signals = sum(counts)
    batch.report.seconds = time.perf_counter() - started
    return batch.report


async def wait_applied(
    client: Client,
    member_ids: Iterable[str],
    *,
    concurrency: int = 64,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Each member's state once every event sent before this call is applied;
    `progress` hears of each member (1) as it is done."""
    gate = asyncio.Semaphore(concurrency)

    async def one(member_id: str) -> tuple[str, dict[str, Any]]:
        async with gate:
            handle = client.get_workflow_handle(member_workflow_id(member_id))
            state = await _sync(handle)
        if progress is not None:
            progress(1)
        return member_id, state

    return dict(await asyncio.gather(*(one(m) for m in member_ids)))


async def _sync(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """The `sync` update, retried while the member's workflow task is being retried.

    After a worker dies mid-task the task times out and is retried; until a worker
    completes that retry the server refuses updates at once ("Workflow Task in failed
    state") instead of waiting, so we wait for it; a task that keeps failing for
    SYNC_PATIENCE_S is a broken member, and its error is raised. An update unanswered for
    SYNC_ATTEMPT_S is sent again under the same update id: the server answers a copy of
    one it still holds with that one's outcome, so resends do not pile up in the member.
    """
    update_id = f"sync-{uuid.uuid4()}"
    delay = 0.2
    deadline = time.monotonic() + SYNC_PATIENCE_S
    while True:
        try:
            state: dict[str, Any] = await asyncio.wait_for(
                handle.execute_update(MemberWorkflow.sync, id=update_id),  # type: ignore[arg-type]
                SYNC_ATTEMPT_S,
            )
            return state
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # ours (wait_for cancels it, which the client reports as its own error), or
            # the server cancelled the client's poll for the outcome
            log.info("sync of %s unanswered: sent again", handle.id)
            continue
        except RPCError as error:
            # FAILED_PRECONDITION: the task is being retried; UNAVAILABLE: a busy or
            # restarting server aborted the update
            retried = (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.UNAVAILABLE)
            if error.status not in retried or time.monotonic() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def rejects_log(data_dir: Path) -> Path:
    return data_dir / "logs" / "feed-rejects.jsonl"


def record_rejects(data_dir: Path, source: str, rejects: list[Reject]) -> None:
    """Keep every rejected line with its reason, so nothing fed is silently dropped; each
    record says which of how many rejections of its feed run it is (`n` of `of`)."""
    if not rejects:
        return
    path = rejects_log(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    total = len(rejects)
    with path.open("a", encoding="utf-8") as out:
        for n, r in enumerate(rejects, start=1):
            record = {"at": stamp, "source": source, **r.__dict__, "n": n, "of": total}
            out.write(json.dumps(record) + "\n")
