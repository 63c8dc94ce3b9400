"""Many members, cheaply, for the benchmarks that read visibility (the members table, the
liability report): each is a signal-with-start carrying one event, with the search
attributes a member publishes once it applied it, on a task queue no worker polls: the
server does all the work, no workflow code runs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.common import Bench, Timer
from runtime.members import count_members
from workflows import search_attributes as sa
from workflows.member import MemberInput, MemberWorkflow, member_workflow_id

UNPOLLED_QUEUE = "bench-table-members"
TIERS = ("Blue", "Gold", "Platinum", "Diamond")
FIRST_EVENT = datetime(2026, 3, 1, tzinfo=UTC)


def published_as(n: int) -> tuple[str, int, datetime]:
    """Member n's tier, points and latest event as `populate` publishes them."""
    return TIERS[n % 4], 7 + n % 9_000 // 100, FIRST_EVENT + timedelta(minutes=n)


async def populate(bench: Bench, members: int) -> float:
    """Start `members` members cheaply, in parallel (see the module); members started
    per second."""
    gate = asyncio.Semaphore(64)

    async def one(n: int) -> None:
        member = f"tbl-{n:06d}"
        tier, points, at = published_as(n)
        event = {
            "type": "trip_completed",
            "event_id": f"{member}-1",
            "member_id": member,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "fare_cents": 700 + n % 9_000,
        }
        published = TypedSearchAttributes(
            [
                SearchAttributePair(sa.TIER, tier),
                SearchAttributePair(sa.POINTS, points),
                SearchAttributePair(sa.LAST_EVENT_AT, at),
            ]
        )
        async with gate:
            await bench.client.start_workflow(
                MemberWorkflow.run,
                MemberInput(member_id=member),
                id=member_workflow_id(member),
                task_queue=UNPOLLED_QUEUE,
                start_signal="events",
                start_signal_args=[[event]],
                search_attributes=published,
            )

    with Timer() as timer:
        await asyncio.gather(*(one(n) for n in range(members)))
    return members / timer.seconds


async def wait_listed(bench: Bench, members: int, timeout: float = 600) -> None:
    """Until visibility lists at least `members` members (it lags the starts a little)."""
    deadline = time.monotonic() + timeout
    while await count_members(bench.client) < members:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {members} members listed after {timeout} s")
        await asyncio.sleep(0.5)
