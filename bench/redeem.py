"""Redemption rate: `redeem` updates per second against one member and across 100
members, against the `adjust` update (the baseline: the member's other update that
moves points, audited the same way) in the same process, on one embedded server and
worker. Each update is sent by the client and waited for (execute_update), `--in-flight`
at a time; members start with big purchases so no redemption is refused (at most
~1,600 coffees per member).

    python -m bench.redeem [--updates 400] [--members 100] [--in-flight 16]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import Bench, Timer, embedded, emit, machine, synced
from runtime.feed import send_member
from workflows.member import Adjustment, MemberWorkflow, member_workflow_id
from workflows.member_messages import RedeemRequest

AT = "2026-03-05T10:00:00Z"


def big_purchases(member: str) -> list[dict[str, Any]]:
    """Ten of the largest purchases an event may carry: over 500,000 points."""
    return [
        {
            "type": "purchase",
            "event_id": f"{member}-p{n}",
            "member_id": member,
            "occurred_at": f"2026-03-01T10:{n:02d}:00Z",
            "amount_cents": 5_000_000,
        }
        for n in range(10)
    ]


async def start(bench: Bench, members: list[str]) -> None:
    target = bench.target()
    for member in members:
        await send_member(bench.client, target, member, big_purchases(member), bulk=True)
    for member in members:
        await synced(bench.client.get_workflow_handle(member_workflow_id(member)))


async def rate(count: int, in_flight: int, send: Callable[[int], Awaitable[Any]]) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one(n: int) -> None:
        async with gate:
            await send(n)

    with Timer() as timer:
        await asyncio.gather(*(one(n) for n in range(count)))
    return count / timer.seconds


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with embedded() as bench:
        # each measurement on members of its own, so none pays for another's history
        one_a, one_r = ["bench-one-a"], ["bench-one-r"]
        many_a = [f"bench-a{n:03d}" for n in range(args.members)]
        many_r = [f"bench-r{n:03d}" for n in range(args.members)]
        await start(bench, one_a + one_r + many_a + many_r)

        def handle(member: str) -> Any:
            return bench.client.get_workflow_handle(member_workflow_id(member))

        def adjust(members: list[str], tag: str) -> Callable[[int], Awaitable[Any]]:
            return lambda n: handle(members[n % len(members)]).execute_update(
                MemberWorkflow.adjust, Adjustment(1, "bench", "bench", f"{tag}-{n}")
            )

        def redeem(members: list[str], tag: str) -> Callable[[int], Awaitable[Any]]:
            return lambda n: handle(members[n % len(members)]).execute_update(
                MemberWorkflow.redeem, RedeemRequest(f"{tag}-{n}", "coffee", AT, "bench")
            )

        n, k = args.updates, args.in_flight
        base_one = await rate(n, k, adjust(one_a, "a1"))
        redeem_one = await rate(n, k, redeem(one_r, "r1"))
        base_many = await rate(n, k, adjust(many_a, "am"))
        redeem_many = await rate(n, k, redeem(many_r, "rm"))
        state = await handle(one_r[0]).query(MemberWorkflow.state)
        assert len(state.get("redemptions") or []) >= min(n, 50), "redemptions were refused"
    return {
        "bench": "redeem",
        "updates": n,
        "members": args.members,
        "in_flight": k,
        "one_member": {
            "baseline_adjust_per_s": round(base_one, 1),
            "redeem_per_s": round(redeem_one, 1),
            "ratio": round(redeem_one / base_one, 3),
        },
        "across_members": {
            "baseline_adjust_per_s": round(base_many, 1),
            "redeem_per_s": round(redeem_many, 1),
            "ratio": round(redeem_many / base_many, 3),
        },
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=400)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=16)
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
