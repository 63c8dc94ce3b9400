"""Purchase/refund pairs streaming while members are rolled back twice (issue 10, finding
3): refunds that arrive before their purchase (sent so, or re-delivered so by a second
rollback) wait for it, and every member ends equal to a fresh replica fed the same
events in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from runtime import deployment as releases
from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment
from tests.memberkit import COMPARED, start_member
from tests.rollback.kit import rollback
from workflows.rules import replay

B11 = "1.1+drill-double-points"
B12 = "1.2+drill-drop-refunds"


def pair(member: str, phase: str, n: int, day: int) -> list[dict[str, Any]]:
    """A small purchase and its refund (the member stays Blue: order never moves a tier)."""
    at = f"2026-06-{day:02d}T{8 + n % 10:02d}:{n % 60:02d}:00Z"
    bought = {
        "type": "purchase",
        "event_id": f"{member}-{phase}-p{n}",
        "member_id": member,
        "occurred_at": at,
        "amount_cents": 700 + 100 * (n % 5),
    }
    refunded = {
        "type": "refund",
        "event_id": f"{member}-{phase}-r{n}",
        "member_id": member,
        "occurred_at": at.replace(":00Z", ":30Z"),
        "refers_to": bought["event_id"],
    }
    return [bought, refunded]


async def test_pairs_streaming_through_two_rollbacks_end_as_in_order(
    deployment: Deployment,
) -> None:
    client, target = deployment.client, deployment.target
    tag = uuid.uuid4().hex[:6]
    members = [f"s{tag}-{i}" for i in range(3)]
    in_order: dict[str, list[Any]] = {m: [] for m in members}
    kept: dict[str, list[Any]] = {m: [] for m in members}  # bought, never refunded

    async def feed(phase: str, pairs: int, day: int, *, stream: bool = False) -> None:
        for n in range(pairs):
            for member in members:
                events = pair(member, phase, n, day)
                in_order[member].extend(events)
                # every other pair arrives refund first
                sent = events[::-1] if (n + len(member)) % 2 else events
                for event in sent:
                    await send_member(client, target, member, [event], bulk=False)
            if stream:
                await asyncio.sleep(0.1)
        for member in members:  # and a purchase that stays
            extra = pair(member, phase, 99, day)[0]
            in_order[member].append(extra)
            kept[member].append(extra)
            await send_member(client, target, member, [extra], bulk=False)
        if not stream:
            await wait_applied(client, members)

    async with deployment.worker("1.0"):
        for member in members:
            await start_member(client, target, member, max_signals=7)
        await feed("a", 3, day=1)
        async with deployment.worker("1.1", drill="double-points"):
            await releases.set_current(client, target.deployment, B11)
            await feed("b", 3, day=3)
            async with deployment.worker("1.2", drill="drop-refunds"):
                await releases.set_current(client, target.deployment, B12)
                await feed("c", 3, day=5)
                async with deployment.worker("1.3"):
                    await releases.set_current(client, target.deployment, "1.3")
                    first, _ = await asyncio.gather(
                        rollback(client, target.task_queue, B12, f"rb12-{tag}", rate_per_second=2),
                        feed("d", 6, day=7, stream=True),
                    )
                    assert first.counts == {"reset": len(members)}, first
                    assert first.verified_ok == len(members), first.mismatches
                    second, _ = await asyncio.gather(
                        rollback(client, target.task_queue, B11, f"rb11-{tag}", rate_per_second=2),
                        feed("e", 6, day=9, stream=True),
                    )
                    assert second.counts == {"reset": len(members)}, second
                    assert second.verified_ok == len(members), second.mismatches
                    states = await wait_applied(client, members)
    for member in members:
        truth = replay(member, in_order[member]).summary()
        state = states[member]
        assert {k: state[k] for k in COMPARED} == {k: truth[k] for k in COMPARED}, member
        assert state["held"] == [] and state["rejections"] == [], member
        # what is left is exactly the purchases never refunded
        assert state["points"] == sum(e["amount_cents"] // 100 for e in kept[member])
