"""Continue-as-new keeps a member's cost flat: time per event at 100 and at 100,000 events.

Two members on one embedded server (the app's settings) and one worker: a young one
that has seen `--small` events and an old one that has seen `--large`. Each round
times the same window of new events on both, side by side, in alternating order:
one continue-as-new period of bulk `events` signals of 500 (5,000 events: the rules'
cost per event dominates), then one of live `event` signals (500 events, one signal
each: Temporal's cost per signal dominates). Each window is timed until the
continue-as-new it causes is done, so it holds exactly one on either member. Every
round gets a fresh young member, so "small" stays at `--small` events; the old one
only grows.

Besides elapsed time per event (the figures the target is about), the processor time
the server and worker used per event (`cpu_*`), which other work on a shared machine
barely moves. The carried snapshot sizes are read at the end (the last young member
has then seen `--small` + 5,500 events). Trips are worth 1,000 points, so both members
are Diamond within their first events; each round waits until the agent runs those
nudges start are done before timing. Bulk signals go two at a time, each pair waited
for (`sync`), so no workflow task carries more than about 1,000 events.

    python -m bench.can_flat [--small 100] [--large 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.agent import agents_idle
from bench.common import Bench, Timer, embedded, emit, machine
from runtime.feed import BULK_CHUNK
from workflows.member import (
    MAX_EVENTS_PER_RUN,
    MAX_SIGNALS_PER_RUN,
    MemberInput,
    MemberWorkflow,
    member_workflow_id,
)

# 30 minutes apart: two trips an hour never count as unusual activity, and 130,000
# events end years before today (events from the future are refused)
EPOCH = datetime(2012, 1, 1, tzinfo=UTC)
SPACING = timedelta(minutes=30)
# Bulk signals sent before waiting for them to be applied. Signals that pile up reach
# the member in one workflow task; 10 x 500 events took over 2 s on this busy machine,
# the SDK's deadlock detector failed the task and the member never recovered (see
# docs/performance.md). 2 x 500 stays far below that.
BULK_IN_FLIGHT = 2
REFUND_EVERY = 10
STUCK_S = 120  # every tenth event refunds the trip five before it (a dedup-set lookup)


def member_events(member: str, first: int, count: int) -> list[dict[str, Any]]:
    """Events number `first` .. `first + count - 1` of one member, in order."""
    events: list[dict[str, Any]] = []
    for n in range(first, first + count):
        base = {
            "event_id": f"{member}-{n}",
            "member_id": member,
            "occurred_at": (EPOCH + n * SPACING).isoformat().replace("+00:00", "Z"),
        }
        if n % REFUND_EVERY == REFUND_EVERY - 1:
            events.append({"type": "refund", **base, "refers_to": f"{member}-{n - 5}"})
        else:
            events.append({"type": "trip_completed", **base, "fare_cents": 100_000 + n % 97})
    return events


class Member:
    """One member fed in order; `sent` counts the events it was sent, `runs` its runs."""

    def __init__(self, bench: Bench, member_id: str) -> None:
        self.bench = bench
        self.member_id = member_id
        self.sent = 0
        self.runs = 1  # a member starts in its first run

    async def feed(self, count: int, *, bulk: bool, period: bool = True) -> tuple[float, float]:
        """Send the next `count` events; seconds per event until they are applied and,
        for a `period` (one continue-as-new period), until the continue-as-new it
        caused is done: however signals batch into workflow tasks, each timed window
        then holds exactly one continue-as-new on either member."""
        events = member_events(self.member_id, self.sent, count)
        self.sent += count
        signals: list[tuple[str, Any]] = (
            [("events", events[i : i + BULK_CHUNK]) for i in range(0, count, BULK_CHUNK)]
            if bulk
            else [("event", e) for e in events]
        )
        client = self.bench.client
        cpu = self.bench.cpu_seconds()
        with Timer() as timer:
            for n, (name, payload) in enumerate(signals, start=1):
                await client.start_workflow(
                    MemberWorkflow.run,
                    MemberInput(member_id=self.member_id),
                    id=member_workflow_id(self.member_id),
                    task_queue=self.bench.task_queue,
                    start_signal=name,
                    start_signal_args=[payload],
                )
                if bulk and n % BULK_IN_FLIGHT == 0:
                    await self.applied()
            state = await self.applied()
            while period and state["runs"] <= self.runs:
                state = await self.applied()
        cpu = self.bench.cpu_seconds() - cpu
        if period and state["runs"] != self.runs + 1:
            raise RuntimeError(f"{self.member_id}: {state['runs'] - self.runs} runs in one period")
        self.runs = state["runs"]
        if state["events_processed"] + state["events_rejected"] != self.sent:
            raise RuntimeError(f"{self.member_id}: not every event was applied")
        if state["events_rejected"]:
            raise RuntimeError(f"{self.member_id}: {state['rejections'][-1]['reason']}")
        return timer.seconds / count, cpu / count

    async def applied(self) -> dict[str, Any]:
        """The member's state once it applied everything sent; a stuck member fails the
        benchmark instead of hanging it."""
        handle = self.bench.client.get_workflow_handle(member_workflow_id(self.member_id))
        try:
            return await asyncio.wait_for(handle.execute_update(MemberWorkflow.sync), STUCK_S)
        except TimeoutError:
            raise RuntimeError(
                f"{self.member_id} applied nothing for {STUCK_S} s: see its workflow tasks"
            ) from None

    async def carried_bytes(self) -> int:
        """Size of the input the current run started with (the snapshot carried over)."""
        handle = self.bench.client.get_workflow_handle(member_workflow_id(self.member_id))
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            return sum(len(p.data) for p in payloads)
        return 0


def us(seconds: float) -> float:
    return round(seconds * 1e6, 1)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("small", "large", "live_small", "live_large")
    times: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    async with embedded() as bench:
        old = Member(bench, "old")
        with Timer() as prefill:
            for _ in range(args.large // MAX_EVENTS_PER_RUN):
                await old.feed(MAX_EVENTS_PER_RUN, bulk=True)
            if args.large % MAX_EVENTS_PER_RUN:
                await old.feed(args.large % MAX_EVENTS_PER_RUN, bulk=True, period=False)
        for r in range(args.rounds):
            young = Member(bench, f"young-{r}")
            await young.feed(args.small, bulk=True, period=False)
            # its first events nudge it up the tiers: agent runs, which must not spill
            # into the timed windows
            await agents_idle(bench.client, [young.member_id, old.member_id])
            pair = [("small", young), ("large", old)]
            if r % 2:
                pair.reverse()  # drift on the machine hits both sides alike
            for key, member in pair:
                wall, used = await member.feed(MAX_EVENTS_PER_RUN, bulk=True)
                times[key].append(wall)
                cpu[key].append(used)
            for key, member in pair:
                wall, used = await member.feed(MAX_SIGNALS_PER_RUN, bulk=False)
                times[f"live_{key}"].append(wall)
                cpu[f"live_{key}"].append(used)
        old_state = await bench.client.get_workflow_handle(member_workflow_id("old")).query(
            MemberWorkflow.state
        )
        carried = {"small": await young.carried_bytes(), "large": await old.carried_bytes()}
    median = {k: statistics.median(v) for k, v in times.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "benchmark": "can_flat",
        "machine": machine(),
        "signal": f"bulk `events` signals of {BULK_CHUNK} (live: one `event` signal per event)",
        "small_events": args.small,
        "large_events": args.large,
        "window_events": MAX_EVENTS_PER_RUN,
        "live_window_events": MAX_SIGNALS_PER_RUN,
        "rounds": args.rounds,
        "prefill_large_s": round(prefill.seconds, 1),
        "us_per_event_small": us(median["small"]),
        "us_per_event_large": us(median["large"]),
        "large_vs_small": round(median["large"] / median["small"], 3),
        "us_per_event_small_range": [us(min(times["small"])), us(max(times["small"]))],
        "us_per_event_large_range": [us(min(times["large"])), us(max(times["large"]))],
        "live_us_per_event_small": us(median["live_small"]),
        "live_us_per_event_large": us(median["live_large"]),
        "live_large_vs_small": round(median["live_large"] / median["live_small"], 3),
        "large_vs_small_per_round": [
            round(large / small, 2)
            for small, large in zip(times["small"], times["large"], strict=True)
        ],
        "cpu_us_per_event_small": us(median_cpu["small"]),
        "cpu_us_per_event_large": us(median_cpu["large"]),
        "cpu_large_vs_small": round(median_cpu["large"] / median_cpu["small"], 3),
        "live_cpu_large_vs_small": round(median_cpu["live_large"] / median_cpu["live_small"], 3),
        "large_member_runs": old_state["runs"],
        "carried_snapshot_bytes_small": carried["small"],
        "carried_snapshot_bytes_large": carried["large"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100, help="events the young member has seen")
    parser.add_argument("--large", type=int, default=100_000, help="events the old one has seen")
    parser.add_argument("--rounds", type=int, default=5)
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
