"""The rollback's race windows (issue 10, finding 5), each forced on the real server
through the test hook `recovery.reset.BEFORE_RESET` (awaited between reading a member
and resetting it): another reset in that window, a batch whose sibling fails, an
adjustment the repaired member refuses, a member with many runs since its reset."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.api.enums.v1 import EventType

from recovery import repair, reset
from recovery.history import received
from recovery.rebuild import Rebuild
from recovery.runs import chain_histories, run_input
from runtime import deployment as releases
from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.events import member_events
from tests.memberkit import COMPARED, start_member
from tests.rollback.kit import reset_run, rollback
from workflows.member import REQUESTS_KEEP, Adjustment, MemberWorkflow, member_workflow_id
from workflows.rules import MemberBook, MemberSnapshot, replay

BAD = "1.1+drill-double-points"


@asynccontextmanager
async def hooked(hook: Callable[[str], Awaitable[None]]) -> AsyncIterator[None]:
    reset.BEFORE_RESET = hook
    try:
        yield
    finally:
        reset.BEFORE_RESET = None


class Fed:
    def __init__(self, dep: Deployment, members: list[str]) -> None:
        self.dep, self.members = dep, members
        self.events: dict[str, list[Any]] = {m: [] for m in members}

    async def send(self, member: str, events: list[Any]) -> None:
        self.events[member].extend(events)
        await send_member(self.dep.client, self.dep.target, member, events, bulk=False)

    async def phase(self, phase: str, count: int, day: int) -> None:
        for member in self.members:
            await self.send(member, member_events(member, phase, count, day))
        await wait_applied(self.dep.client, self.members)

    async def damaged(self, max_signals: int = 50) -> None:
        """Good build, the drill build, then the fixed build 1.2 (current at the end)."""
        dep = self.dep
        for member in self.members:
            await start_member(dep.client, dep.target, member, max_signals=max_signals)
        await self.phase("a", 6, day=1)
        async with dep.worker("1.1", drill="double-points"):
            await releases.set_current(dep.client, dep.target.deployment, BAD)
            await self.phase("b", 6, day=4)
        await releases.set_current(dep.client, dep.target.deployment, "1.2")
        await self.phase("c", 5, day=8)

    async def assert_whole(self) -> None:
        states = await wait_applied(self.dep.client, self.members)
        for member in self.members:
            truth = replay(member, self.events[member]).summary()
            state = states[member]
            assert state["events_processed"] == truth["events_processed"], member
            assert state["events_rejected"] == truth["events_rejected"], member
            assert sorted(e["cause"] for e in state["ledger"]) == sorted(
                e["cause"] for e in truth["ledger"]
            ), member


def members(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"race{tag}-{i}" for i in range(count)]


async def test_another_reset_between_reading_and_resetting_loses_nothing(
    deployment: Deployment,
) -> None:
    """An operator resets the member (e.g. in the Web UI) after the rollback read it and
    events reach the run that reset made; the rollback's reset then replaces that run
    too, which visibility may not list yet: its events are re-delivered all the same."""
    client = deployment.client
    (member,) = names = members(1)
    fed = Fed(deployment, names)
    operator_runs: list[str] = []

    async def operator_reset(member_id: str) -> None:
        handle = client.get_workflow_handle(member_workflow_id(member_id))
        current = await handle.describe()
        history = await handle.fetch_history()
        last_task = max(
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        made = await reset_run(
            client,
            member_workflow_id(member_id),
            current.run_id,
            last_task,
            request_id=f"operator-{member_id}",
            reason="an operator's own reset",
            identity="operator in the Web UI",
        )
        operator_runs.append(made)
        await fed.send(member_id, member_events(member_id, "x", 5, day=10))
        await wait_applied(client, [member_id])

    async with deployment.worker("1.0"), deployment.worker("1.2"):
        await fed.damaged()
        async with hooked(operator_reset):
            result = await rollback(
                client,
                deployment.target.task_queue,
                BAD,
                f"rollback-race1-{member}",
                query=f"WorkflowId = 'member-{member}'",
            )
        assert operator_runs, "the hook did not run"
        assert result.counts == {"reset": 1}, result
        assert result.verified_ok == 1, result.mismatches
        await fed.assert_whole()


async def test_a_failing_member_cancels_its_batch_siblings_before_the_retry(
    deployment: Deployment,
) -> None:
    """One member of a batch fails: the others' work is cancelled, not left running
    beside the retry (which would re-deliver their events twice at once)."""
    client = deployment.client
    first, second = names = sorted(members(2))
    fed = Fed(deployment, names)
    calls: dict[str, int] = {first: 0, second: 0}
    cancelled: list[str] = []
    waiting = asyncio.Event()

    async def hook(member_id: str) -> None:
        calls[member_id] += 1
        if calls[member_id] > 1:
            return
        if member_id == second:
            waiting.set()
            try:
                await asyncio.sleep(3_600)  # would run on as an orphan
            except asyncio.CancelledError:
                cancelled.append(member_id)
                raise
        await waiting.wait()
        raise RuntimeError("injected: this member's reset fails once")

    async with deployment.worker("1.0"), deployment.worker("1.2"):
        await fed.damaged()
        async with hooked(hook):
            result = await rollback(
                client,
                deployment.target.task_queue,
                BAD,
                f"rollback-race2-{first}",
                query=f"WorkflowId = 'member-{first}' OR WorkflowId = 'member-{second}'",
                concurrency=8,  # two members per batch
            )
        assert cancelled == [second]
        assert calls == {first: 2, second: 2}
        assert result.counts == {"reset": 2}, result
        assert result.verified_ok == 2, result.mismatches
        await fed.assert_whole()


async def test_an_adjustment_the_repaired_member_refuses_fails_nothing(
    deployment: Deployment,
) -> None:
    """An operator took points off a balance the bad build had inflated; after the repair
    the balance is too low for it: the re-sent adjustment is refused (not retried until
    the rollback fails), and the member equals the rules without it."""
    client = deployment.client
    (member,) = names = members(1)
    fed = Fed(deployment, names)
    async with deployment.worker("1.0"), deployment.worker("1.2"):
        for m in names:
            await start_member(client, deployment.target, m, max_signals=50)
        await fed.phase("a", 4, day=1)
        async with deployment.worker("1.1", drill="double-points"):
            await releases.set_current(client, deployment.target.deployment, BAD)
            await fed.phase("b", 4, day=4)
            inflated = (await wait_applied(client, [member]))[member]["points"]
            handle = client.get_workflow_handle(member_workflow_id(member))
            take = inflated - 10  # leaves 10 under the bad build, below zero after
            await handle.execute_update(
                MemberWorkflow.adjust, Adjustment(-take, "chargeback", "ops", f"adj-{member}")
            )
        await releases.set_current(client, deployment.target.deployment, "1.2")
        truth = replay(member, fed.events[member]).summary()
        assert truth["points"] < take  # the adjustment cannot apply after the repair
        result = await rollback(
            client,
            deployment.target.task_queue,
            BAD,
            f"rollback-race3-{member}",
            query=f"WorkflowId = 'member-{member}'",
        )
        assert result.state == "done" and result.counts == {"reset": 1}, result
        assert result.verified_ok == 1, result.mismatches
        state = (await wait_applied(client, [member]))[member]
    assert {k: state[k] for k in COMPARED} == {k: truth[k] for k in COMPARED}
    assert not any(e["kind"] == "adjustment" for e in state["ledger"])


async def test_the_rebuild_forgets_request_ids_when_the_member_does(
    deployment: Deployment,
) -> None:
    """The member carries its last REQUESTS_KEEP adjustment ids into each new run; an
    older id sent again is applied again. The rebuild a preview and verification use
    must do the same, or the two disagree after REQUESTS_KEEP adjustments."""
    client = deployment.client
    (member,) = members(1)
    async with deployment.worker("1.0"):
        await start_member(client, deployment.target, member, max_signals=2)
        handle = client.get_workflow_handle(member_workflow_id(member))
        for n in range(REQUESTS_KEEP + 4):
            await handle.execute_update(
                MemberWorkflow.adjust, Adjustment(1, "goodwill", "ops", f"{member}-r{n}")
            )
        await send_member(
            client, deployment.target, member, member_events(member, "a", 2, 1), bulk=False
        )

        async def continued() -> bool:
            return bool((await handle.query(MemberWorkflow.state))["runs"] >= 2)

        await eventually(continued, timeout=30)
        again = await handle.execute_update(
            MemberWorkflow.adjust, Adjustment(1, "goodwill", "ops", f"{member}-r0")
        )
        assert again.applied  # forgotten by the new run: applied again
        live = (await wait_applied(client, [member]))[member]
        current = (await handle.describe()).run_id
        chain = await chain_histories(client, member_workflow_id(member), run_id=current)
    start = run_input(chain[0])
    rebuild = Rebuild(MemberBook(MemberSnapshot(member_id=member)), start.requests or [])
    for history in chain:
        for item in received(history, approvals=True):
            rebuild.apply(item, "rules")
    computed = rebuild.book.summary()
    assert {k: computed[k] for k in COMPARED} == {k: live[k] for k in COMPARED}
    assert live["points"] == REQUESTS_KEEP + 5 + sum(
        e["delta"] for e in live["ledger"] if e["kind"] == "earn"
    )


async def test_an_already_repaired_member_is_still_verified(deployment: Deployment) -> None:
    """A batch's retry finds a member its failed attempt had reset (already repaired).
    It is verified like the others: here the build after the rollback is broken too,
    and its mismatch is reported, not passed over."""
    client = deployment.client
    first, second = names = sorted(members(2))
    fed = Fed(deployment, names)
    calls: dict[str, int] = {first: 0, second: 0}

    async def hook(member_id: str) -> None:
        calls[member_id] += 1
        if member_id != second or calls[member_id] > 1:
            return
        handle = client.get_workflow_handle(member_workflow_id(first))

        async def reset_done() -> bool:
            current = (await handle.describe()).run_id
            return await repair.latest_reset_run(client, first, current) is not None

        await eventually(reset_done, timeout=60, interval=0.2)
        raise RuntimeError("injected: the batch fails after the first member's reset")

    async with deployment.worker("1.0"), deployment.worker("1.2"):
        await fed.damaged()
        async with deployment.worker("1.3", drill="zero-on-trip"):
            await releases.set_current(
                client, deployment.target.deployment, "1.3+drill-zero-on-trip"
            )
            async with hooked(hook):
                result = await rollback(
                    client,
                    deployment.target.task_queue,
                    BAD,
                    f"rollback-race4-{first}",
                    query=f"WorkflowId = 'member-{first}' OR WorkflowId = 'member-{second}'",
                    concurrency=8,  # two members per batch
                )
    assert calls == {first: 1, second: 2}  # the retry found the first one repaired
    assert result.counts == {"reset": 1, "already-repaired": 1}, result
    problems = {m["member_id"]: m["problems"] for m in result.mismatches}
    assert set(problems) == {first, second}
    assert any("state differs from its history" in p for p in problems[first]), problems


async def test_the_reset_run_is_found_behind_many_runs(deployment: Deployment) -> None:
    """A member that continued as new more than 50 times since its reset: the run the
    reset made is still found (the search once stopped after 50 and healed nothing)."""
    client = deployment.client
    (member,) = members(1)
    async with deployment.worker("1.0"):
        await start_member(client, deployment.target, member, max_signals=1)
        # one signal: the member continues as new once, into a run that then waits
        await send_member(
            client, deployment.target, member, member_events(member, "a", 1, 1), bulk=False
        )
        await wait_applied(client, [member])
        handle = client.get_workflow_handle(member_workflow_id(member))
        current = await handle.describe()

        async def first_task_of_current() -> int | None:
            history = await client.get_workflow_handle(
                member_workflow_id(member), run_id=current.run_id
            ).fetch_history()
            done = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            return next((e.event_id for e in history.events if e.event_type == done), None)

        first_task = await eventually(first_task_of_current, timeout=30)
        made = await reset_run(
            client,
            member_workflow_id(member),
            current.run_id,
            first_task,
            request_id=f"reset-{member}",
        )
        for event in member_events(member, "b", 55, day=3):
            before = (await handle.describe()).run_id
            await send_member(client, deployment.target, member, [event], bulk=False)

            async def moved(before: str = before) -> bool:
                return (await handle.describe()).run_id != before

            await eventually(moved, timeout=30, interval=0.05)  # one run per event
        latest = (await handle.describe()).run_id
        assert await repair.latest_reset_run(client, member, latest) == made


async def test_a_repair_that_differs_from_its_preview_is_a_mismatch(
    deployment: Deployment,
) -> None:
    """Nothing reached the member after the preview, yet it differs from it: a mismatch
    naming the field (here the preview is made wrong on purpose; the rules agree with
    the member, so only the preview comparison can catch it)."""
    client = deployment.client
    (member,) = names = members(1)
    fed = Fed(deployment, names)
    async with deployment.worker("1.0"), deployment.worker("1.2"):
        await fed.damaged()
        _, damage = await repair.find_damage(client, BAD, query=f"WorkflowId = 'member-{member}'")
        preview = await repair.preview_member(client, damage[0])
        wrong = {**preview.after, "points": preview.after["points"] + 7, "as_of": preview.as_of}
        result = await rollback(
            client,
            deployment.target.task_queue,
            BAD,
            f"rollback-race5-{member}",
            query=f"WorkflowId = 'member-{member}'",
            expected={member: wrong},
        )
    (mismatch,) = result.mismatches
    assert mismatch["member_id"] == member
    assert any(
        p.startswith("state differs from the preview: points ") for p in mismatch["problems"]
    ), mismatch
    assert not any("from its history" in p for p in mismatch["problems"])
