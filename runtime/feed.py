"""Sending events to member workflows: from JSON Lines, generated traffic or code."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from temporalio.client import Client

from runtime.connect import Target
from workflows.events import EventError, parse_event, valid_member_id
from workflows.member import (
    SIGNAL_EVENT,
    SIGNAL_EVENTS,
    MemberInput,
    MemberWorkflow,
    member_workflow_id,
)

BULK_CHUNK = 500
MAX_LINE_BYTES = 2_000_000  # Temporal's payload limit: a longer line could never be sent


@dataclass
class Reject:
    line: int
    event_id: str | None
    reason: str
    sent: bool  # True when the member workflow got it too (and lists it in `rejections`)


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


def read_lines(stream: IO[str]) -> Iterable[tuple[int, object]]:
    """Yield (line number, parsed JSON or an EventError) for each non-blank line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:
            yield number, EventError(f"line is {len(line):,} bytes, over the 2 MB limit")
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            yield number, EventError(f"invalid JSON: {error.msg} at column {error.colno}")
        except (ValueError, RecursionError) as error:  # 5,000-digit numbers, deep nesting
            yield number, EventError(f"unreadable JSON ({type(error).__name__})")


def check(numbered: Iterable[tuple[int, object]]) -> Batch:
    batch = Batch()
    first_line: dict[str, int] = {}
    for number, raw in numbered:
        if isinstance(raw, EventError):
            batch.report.rejects.append(Reject(number, None, raw.reason, False))
            continue
        member = raw.get("member_id") if isinstance(raw, dict) else None
        try:
            event = parse_event(raw)
        except EventError as error:
            # still deliver it when we know the member, so the member records it too
            sendable = valid_member_id(member)
            batch.report.rejects.append(Reject(number, error.event_id, error.reason, sendable))
            if sendable:
                batch.by_member.setdefault(str(member), []).append(raw)
            continue
        key = f"{event.member_id}\x00{event.event_id}"
        if key in first_line:
            batch.report.duplicates += 1
        else:
            first_line[key] = number
            batch.report.accepted += 1
        batch.by_member.setdefault(event.member_id, []).append(raw)
    batch.report.rejected = len(batch.report.rejects)
    batch.report.members = len(batch.by_member)
    return batch


async def send_member(
    client: Client, target: Target, member_id: str, events: list[Any], *, bulk: bool
) -> int:
    """Send one member's events in order by signal-with-start; returns signals sent."""
    chunks: list[tuple[str, Any]]
    if bulk:
        chunks = [
            (SIGNAL_EVENTS, events[i : i + BULK_CHUNK]) for i in range(0, len(events), BULK_CHUNK)
        ]
    else:
        chunks = [(SIGNAL_EVENT, event) for event in events]
    for name, payload in chunks:
        await client.start_workflow(
            MemberWorkflow.run,
            MemberInput(member_id=member_id),
            id=member_workflow_id(member_id),
            task_queue=target.task_queue,
            start_signal=name,
            start_signal_args=[payload],
        )
    return len(chunks)


async def deliver(
    client: Client, target: Target, batch: Batch, *, bulk: bool = False, concurrency: int = 64
) -> FeedReport:
    """Send every member's events (members in parallel, each member in order)."""
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(member_id: str, events: list[Any]) -> int:
        async with gate:
            return await send_member(client, target, member_id, events, bulk=bulk)

    counts = await asyncio.gather(*(one(m, ev) for m, ev in batch.by_member.items()))
    batch.report.signals = sum(counts)
    batch.report.seconds = time.perf_counter() - started
    return batch.report


async def wait_applied(
    client: Client, member_ids: Iterable[str], *, concurrency: int = 64
) -> dict[str, dict[str, Any]]:
    """Each member's state once every event sent before this call is applied."""
    gate = asyncio.Semaphore(concurrency)

    async def one(member_id: str) -> tuple[str, dict[str, Any]]:
        async with gate:
            handle = client.get_workflow_handle(member_workflow_id(member_id))
            return member_id, await handle.execute_update(MemberWorkflow.sync)

    return dict(await asyncio.gather(*(one(m) for m in member_ids)))


def rejects_log(data_dir: Path) -> Path:
    return data_dir / "logs" / "feed-rejects.jsonl"


def record_rejects(data_dir: Path, source: str, rejects: list[Reject]) -> None:
    """Keep every rejected line with its reason, so nothing fed is silently dropped."""
    if not rejects:
        return
    path = rejects_log(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with path.open("a", encoding="utf-8") as out:
        for r in rejects:
            out.write(json.dumps({"at": stamp, "source": source, **r.__dict__}) + "\n")
