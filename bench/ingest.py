"""Ingest: events/s through member workflows on the embedded server.

Live (one `event` signal per event) and bulk (`events` signals) against a no-op
workflow receiving the same signals on the same server and worker, in the same run.
With --compare-sqlite, also the member live rate on a server with SQLite's default
pragmas, to justify the pragmas the app uses. With --compare-loopback, also the member live rate on a server on
127.0.0.1 instead of its private network (the cost of the socket forwarder).

    python -m bench.ingest [--members 50] [--events 40] [--rounds 2] [--compare-sqlite]
                           [--compare-loopback]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.common import Bench, Timer, embedded, emit, machine, process_cpu_seconds, synced
from runtime.feed import BULK_CHUNK
from runtime.server import DEFAULT_SQLITE_PRAGMAS
from runtime.simulate import simulate
from workflows.ids import member_workflow_id


def traffic(members: int, events: int, prefix: str) -> dict[str, list[dict[str, Any]]]:
    by_member: dict[str, list[dict[str, Any]]] = {}
    for event in simulate(members * events, members, seed=11, prefix=prefix):
        by_member.setdefault(event["member_id"], []).append(event)
    return by_member


async def send_all(
    bench: Bench, workflow: str, by_member: dict[str, list[dict[str, Any]]], *, bulk: bool
) -> float:
    """Send every member's events (members in parallel, each in order), wait until applied."""
    client = bench.client
    gate = asyncio.Semaphore(100)

    async def one(member: str, events: list[dict[str, Any]]) -> None:
        # members get the app's ids (what the replay check and the detail look up)
        workflow_id = (
            member_workflow_id(member) if workflow == "MemberWorkflow" else f"{workflow}-{member}"
        )
        arg: Any = {"member_id": member} if workflow == "MemberWorkflow" else member
        chunks: list[tuple[str, Any]] = (
            [("events", events[i : i + BULK_CHUNK]) for i in range(0, len(events), BULK_CHUNK)]
            if bulk
            else [("event", e) for e in events]
        )
        async with gate:
            for name, payload in chunks:
                await client.start_workflow(
                    workflow,
                    arg,
                    id=workflow_id,
                    task_queue=bench.task_queue,
                    start_signal=name,
                    start_signal_args=[payload],
                )
            await synced(client.get_workflow_handle(workflow_id))

    with Timer() as timer:
        await asyncio.gather(*(one(m, ev) for m, ev in by_member.items()))
    total = sum(len(ev) for ev in by_member.values())
    return total / timer.seconds


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "ingest", "machine": machine()}
    async with embedded(DEFAULT_SQLITE_PRAGMAS) as bench:
        warm = traffic(10, 5, "warm")
        await send_all(bench, "NoopWorkflow", warm, bulk=False)
        await send_all(bench, "MemberWorkflow", warm, bulk=False)
        live, noop, bulk = [], [], []
        for r in range(args.rounds):
            # alternate so that drift (a growing database) hits both sides alike
            noop.append(
                await send_all(
                    bench, "NoopWorkflow", traffic(args.members, args.events, f"n{r}"), bulk=False
                )
            )
            live.append(
                await send_all(
                    bench, "MemberWorkflow", traffic(args.members, args.events, f"l{r}"), bulk=False
                )
            )
            bulk.append(
                await send_all(
                    bench,
                    "MemberWorkflow",
                    traffic(args.members, args.bulk_events, f"b{r}"),
                    bulk=True,
                )
            )
    result.update(
        live_events_per_s=round(sum(live) / len(live), 1),
        noop_events_per_s=round(sum(noop) / len(noop), 1),
        bulk_events_per_s=round(sum(bulk) / len(bulk), 1),
        sqlite_pragmas=list(DEFAULT_SQLITE_PRAGMAS),
        members=args.members,
        live_events_per_member=args.events,
        bulk_events_per_member=args.bulk_events,
        rounds=args.rounds,
    )
    result["live_vs_noop"] = round(result["live_events_per_s"] / result["noop_events_per_s"], 3)
    result["bulk_vs_live"] = round(result["bulk_events_per_s"] / result["live_events_per_s"], 2)
    if args.compare_sqlite:
        async with embedded(()) as bench:
            await send_all(bench, "MemberWorkflow", traffic(10, 5, "warm"), bulk=False)
            rate = await send_all(
                bench, "MemberWorkflow", traffic(args.members, args.events, "d"), bulk=False
            )
        result["live_events_per_s_default_sqlite"] = round(rate, 1)
        result["chosen_vs_default_sqlite"] = round(result["live_events_per_s"] / rate, 2)
    if args.compare_loopback:
        rates: dict[str, list[float]] = {"private": [], "loopback": []}
        forwarder_cpu_s = 0.0  # the socket forwarder's processor time, all private runs
        for _ in range(args.rounds):  # alternated, each on a fresh server
            for name, private in (("private", None), ("loopback", False)):
                async with embedded(private_network=private) as bench:
                    assert bench.server.private == (private is None)
                    await send_all(bench, "MemberWorkflow", traffic(10, 5, "warm"), bulk=False)
                    rates[name].append(
                        await send_all(
                            bench,
                            "MemberWorkflow",
                            traffic(args.members, args.events, "p"),
                            bulk=False,
                        )
                    )
                    if private is None and bench.server.pid:
                        forwarder_cpu_s += process_cpu_seconds(bench.server.pid)
        result["forwarder_cpu_ms_per_event"] = round(
            1000 * forwarder_cpu_s / (args.rounds * (args.members * args.events + 50)), 3
        )
        private_rate = sum(rates["private"]) / len(rates["private"])
        loopback_rate = sum(rates["loopback"]) / len(rates["loopback"])
        result["live_events_per_s_private_network"] = round(private_rate, 1)
        result["live_events_per_s_loopback"] = round(loopback_rate, 1)
        result["private_vs_loopback"] = round(private_rate / loopback_rate, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--events", type=int, default=40, help="live events per member")
    parser.add_argument("--bulk-events", type=int, default=400, help="bulk events per member")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare-sqlite", action="store_true")
    parser.add_argument("--compare-loopback", action="store_true")
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
