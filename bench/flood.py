"""Flood: members sent bulk signals back to back by a plain client (no throttle).

Two members get `--events` events each in signals of 500, all sent at once; the time
until both applied every event (drain), against a no-op workflow receiving the same
signals on the same server and worker in the same run (the signals' own cost). Then
the worker is sent SIGTERM mid-flood: how long it takes to stop, and that a new worker
applies the rest with nothing lost.

    python -m bench.flood [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import Bench, Timer, embedded, emit, machine, start_worker, synced
from workflows.ids import member_workflow_id

CHUNK = 500


def purchases(member: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "purchase",
            "event_id": f"{member}-{n}",
            "member_id": member,
            "occurred_at": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            "amount_cents": 100 + n % 5_000,
        }
        for n in range(count)
    ]


async def flood(bench: Bench, workflow: str, members: list[str], count: int) -> list[str]:
    """Send every member's events as back-to-back `events` signals; their workflow ids."""
    client = bench.client
    ids = []

    async def one(member: str) -> None:
        events = purchases(member, count)
        wid = member_workflow_id(member) if workflow == "MemberWorkflow" else f"noop-{member}"
        arg: Any = {"member_id": member} if workflow == "MemberWorkflow" else member
        ids.append(wid)
        for i in range(0, len(events), CHUNK):
            await client.start_workflow(
                workflow,
                arg,
                id=wid,
                task_queue=bench.task_queue,
                start_signal="events",
                start_signal_args=[events[i : i + CHUNK]],
            )

    await asyncio.gather(*(one(m) for m in members))
    return ids


async def drained(bench: Bench, ids: list[str]) -> list[Any]:
    return [await synced(bench.client.get_workflow_handle(wid)) for wid in ids]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "flood", "machine": machine(), "events": args.events}
    async with embedded() as bench:
        with Timer() as noop:
            await drained(bench, await flood(bench, "NoopWorkflow", ["n1", "n2"], args.events))
        with Timer() as member:
            ids = await flood(bench, "MemberWorkflow", ["m1", "m2"], args.events)
            sent_s = time.perf_counter() - member.start
            states = await drained(bench, ids)
        assert [s["events_processed"] for s in states] == [args.events] * 2, states
        result.update(
            noop_s=round(noop.seconds, 1),
            member_drain_s=round(member.seconds, 1),
            member_send_s=round(sent_s, 1),
            member_events_per_s=round(2 * args.events / member.seconds, 1),
            noop_events_per_s=round(2 * args.events / noop.seconds, 1),
        )
        result["member_vs_noop"] = round(
            result["member_events_per_s"] / result["noop_events_per_s"], 3
        )

        # SIGTERM while two members are flooded: the worker stops promptly, the next
        # one applies the rest
        ids = await flood(bench, "MemberWorkflow", ["s1", "s2"], args.events)
        await asyncio.sleep(3)
        assert bench.worker is not None
        began = time.perf_counter()
        bench.worker.terminate()
        await bench.worker.wait()
        result["worker_stop_s"] = round(time.perf_counter() - began, 2)
        result["worker_exit_code"] = bench.worker.returncode
        bench.worker = await start_worker(bench)
        states = await drained(bench, ids)
        result["after_restart_all_applied"] = [s["events_processed"] for s in states] == [
            args.events
        ] * 2
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events per member")
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
