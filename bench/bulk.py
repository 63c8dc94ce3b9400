"""Bulk decisions per second: a policy decision run as BulkDecisionWorkflow (durable:
batches of 20 by an activity, 4 in flight, each decision an update with an id), against
the client deciding the same number of proposals one by one (`approvals.decide`, 32 in
flight: the path bulk decisions took before 0.4.2) in the same process, on one embedded
server and worker (offline model). Each member gets a double-charge ticket: the agent
proposes a small grant (the guardrails approve it by themselves) and a message, which
stays pending; the messages are rejected (no effect goes out).

    python -m bench.bulk [--proposals 200]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.common import Bench, Timer, embedded, emit, machine
from runtime import approvals
from runtime.connect import Target
from runtime.feed import send_member
from workflows.contract import member_workflow_id
from workflows.member import MemberWorkflow

CHARGE = "I was charged twice for my ride on Tuesday."
IN_FLIGHT = 32


def ticket(member: str) -> dict[str, Any]:
    return {
        "type": "support_ticket",
        "event_id": f"{member}-k1",
        "member_id": member,
        "occurred_at": "2026-03-02T10:00:00Z",
        "text": CHARGE,
    }


async def pending_messages(bench: Bench, target: Target, members: list[str]) -> list[dict]:  # type: ignore[type-arg]
    """Each member's pending message, once the agent proposed it (asked again meanwhile)."""
    wanted = set(members)
    for member in members:
        await send_member(bench.client, target, member, [ticket(member)], bulk=False)
    for _ in range(600):
        found = []
        for member in members:
            handle = bench.client.get_workflow_handle(member_workflow_id(member))
            proposals = await handle.query(MemberWorkflow.proposals)
            found += [
                p for p in proposals if p["action"] == "message_member" and p["status"] == "pending"
            ]
        if {p["member_id"] for p in found} == wanted:
            return found
        await asyncio.sleep(1)
    raise RuntimeError("the agent did not propose a message to every member")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with embedded() as bench:
        target = bench.target()
        n = args.proposals
        one_by_one = await pending_messages(bench, target, [f"bench-o{i:04d}" for i in range(n)])
        durable = await pending_messages(bench, target, [f"bench-d{i:04d}" for i in range(n)])

        gate = asyncio.Semaphore(IN_FLIGHT)

        async def decide(p: dict[str, Any]) -> None:
            async with gate:
                await approvals.decide(
                    bench.client,
                    p["id"],
                    digest=approvals.shown_digest(p),
                    approve=False,
                    reason="bench",
                    actor="bench",
                    task_queue=bench.task_queue,
                )

        with Timer() as base:
            await asyncio.gather(*(decide(p) for p in one_by_one))
        with Timer() as bulk:
            report = await approvals.decide_by_policy(
                bench.client,
                approvals.parse_policy("action=message_member"),
                approve=False,
                reason="bench",
                actor="bench",
                task_queue=bench.task_queue,
                confirmed=[{"id": p["id"], "digest": approvals.shown_digest(p)} for p in durable],
            )
        assert len(report.decided) == n and not report.failed, report.failed[:3]
    return {
        "bench": "bulk",
        "proposals": n,
        "one_by_one_per_s": round(n / base.seconds, 1),
        "bulk_workflow_per_s": round(n / bulk.seconds, 1),
        "ratio": round(base.seconds / bulk.seconds, 3),
        "seconds": {"one_by_one": round(base.seconds, 2), "bulk_workflow": round(bulk.seconds, 2)},
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=200)
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
