"""Input no member can be jammed by, sent by a plain Temporal client (not `feed`, which
throttles): the longest ids the event contract allows, and floods of bulk signals sent
back to back. Every event is applied, no workflow task of any run fails, and a worker
stops promptly while members are flooded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError

from recovery.history import received, received_events
from recovery.runs import chain_histories
from runtime import rewards
from runtime.feed import check, deliver, wait_applied
from tests.chaos.kit import (
    SAME_AS_RULES,
    failed_tasks,
    rules_state,
    sigkill,
    start_worker,
    stop,
)
from tests.conftest import Deployment
from workflows.carry import CARRY_BUDGET
from workflows.events import MAX_REASON_CHARS
from workflows.member import (
    MAX_EVENTS_PER_TASK,
    SIGNAL_EVENTS,
    Adjustment,
    Decision,
    MemberInput,
    MemberWorkflow,
    member_workflow_id,
)
from workflows.rules import replay

LONG_TAIL = "\U0001d538" * 122  # 4 bytes in UTF-8, 12 in ASCII-escaped JSON


def purchase(member: str, event_id: str, n: int) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member,
        "occurred_at": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
        "amount_cents": 100 + n % 5_000,
    }


async def flood(client: Client, task_queue: str, member: str, chunks: list[list[Any]]) -> None:
    """Every chunk as an `events` signal, back to back, as any client may."""
    await client.start_workflow(
        MemberWorkflow.run,
        MemberInput(member_id=member),
        id=member_workflow_id(member),
        task_queue=task_queue,
        start_signal=SIGNAL_EVENTS,
        start_signal_args=[chunks[0]],
    )
    handle = client.get_workflow_handle(member_workflow_id(member))
    for chunk in chunks[1:]:
        await handle.signal(SIGNAL_EVENTS, chunk)


async def run_inputs(client: Client, member: str) -> list[int]:
    """Bytes of each run's start input (what continue-as-new carried), oldest first."""
    handle = client.get_workflow_handle(member_workflow_id(member))
    description = await handle.describe()
    sizes = []
    for history in await chain_histories(client, handle.id, run_id=description.run_id):
        start = history.events[0].workflow_execution_started_event_attributes
        sizes.append(sum(len(p.data) for p in start.input.payloads))
    return sizes


async def test_the_longest_ids_the_contract_allows_never_jam_a_member(
    deployment: Deployment,
) -> None:
    client, target = deployment.client, deployment.target
    member = "longids"
    ids = [f"{i:06d}{LONG_TAIL}" for i in range(5_000)]
    events = [purchase(member, event_id, n) for n, event_id in enumerate(ids)]
    later = [purchase(member, f"later-{n}", 5_000 + n) for n in range(10)]
    resend = events[3]
    async with deployment.worker():
        await flood(
            client, target.task_queue, member, [events[i : i + 500] for i in range(0, 5_000, 500)]
        )
        await wait_applied(client, [member])  # 5,000 events: it continues as new
        await client.get_workflow_handle(member_workflow_id(member)).signal(
            SIGNAL_EVENTS, [*later, resend]
        )
        state = (await wait_applied(client, [member]))[member]
        assert await failed_tasks(client, [member]) == []
        sizes = await run_inputs(client, member)
    # it continued as new with every long id in its dedup window, well under the limit
    assert state["runs"] >= 2 and len(sizes) >= 2
    assert max(sizes) < CARRY_BUDGET, sizes
    assert state["events_processed"] == 5_010
    assert state["duplicates_ignored"] == 1  # the resend of a long id, across the new run
    truth = rules_state(member, [*events, *later, resend])
    assert {k: state[k] for k in SAME_AS_RULES} == {k: truth[k] for k in SAME_AS_RULES}
    assert state["ledger_base"] + sum(e["delta"] for e in state["ledger"]) == state["points"]


async def test_a_flood_of_bulk_signals_is_applied_in_bounded_tasks(deployment: Deployment) -> None:
    """Two members, 15,000 events each in 30 back-to-back signals of 500 (across three
    runs each; `python -m bench.flood` sends 100,000 and times it): every event applied in
    order, no task applies more than MAX_EVENTS_PER_TASK, no task fails, and the history
    reader (what the rollback preview and replay-check read) gives the same events, task
    by task within the bound."""
    client, target = deployment.client, deployment.target
    members = ["flood-a", "flood-b"]
    fed = {m: [purchase(m, f"{m}-{n}", n) for n in range(15_000)] for m in members}
    async with deployment.worker():
        await asyncio.gather(
            *(
                flood(client, target.task_queue, m, [e[i : i + 500] for i in range(0, len(e), 500)])
                for m, e in fed.items()
            )
        )
        states = await wait_applied(client, members)
        assert await failed_tasks(client, members) == []
        for member in members:
            handle = client.get_workflow_handle(member_workflow_id(member))
            description = await handle.describe()
            chain = await chain_histories(client, handle.id, run_id=description.run_id)
            assert len(chain) >= 2  # it continued as new under the flood
            read = [e for h in chain for e in received_events(h)]
            assert read == fed[member]
            # the reader's tasks apply as the member did: never more than the bound each
            per_task: dict[tuple[int, int], int] = {}
            for n, history in enumerate(chain):
                for item in received(history):
                    per_task[(n, item.applied_at)] = per_task.get((n, item.applied_at), 0) + 1
            assert max(per_task.values()) <= MAX_EVENTS_PER_TASK
            assert len(per_task) >= len(fed[member]) // MAX_EVENTS_PER_TASK
    for member, events in fed.items():
        truth = replay(member, events).summary()
        assert {k: states[member][k] for k in SAME_AS_RULES} == {k: truth[k] for k in SAME_AS_RULES}


STOP_EVENTS = 15_000  # a member: still draining 2 s after the flood (asserted)


async def test_a_worker_stops_within_10_s_while_members_are_flooded(
    deployment: Deployment, tmp_path: Path
) -> None:
    client, target = deployment.client, deployment.target
    options = [
        "--address",
        deployment.address,
        "--namespace",
        target.namespace,
        "--task-queue",
        target.task_queue,
        "--deployment",
        target.deployment,
        "--build-id",
        "1.0",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    members = ["stop-a", "stop-b"]
    fed = {m: [purchase(m, f"{m}-{n}", n) for n in range(STOP_EVENTS)] for m in members}
    worker = await start_worker(*options, log=tmp_path / "worker-1.log")
    try:
        await asyncio.gather(
            *(
                flood(client, target.task_queue, m, [e[i : i + 500] for i in range(0, len(e), 500)])
                for m, e in fed.items()
            )
        )
        await asyncio.sleep(2)  # mid-drain
        states = [
            await client.get_workflow_handle(member_workflow_id(m)).query(MemberWorkflow.state)
            for m in members
        ]
        assert any(s["events_processed"] < STOP_EVENTS for s in states), "drained before the stop"
        began = time.monotonic()
        await stop(worker)
        took = time.monotonic() - began
        assert worker.returncode == 0, (tmp_path / "worker-1.log").read_text()[-2000:]
        assert took < 10, took
    finally:
        await sigkill(worker)
    worker = await start_worker(*options, log=tmp_path / "worker-2.log")
    try:
        states = await wait_applied(client, members)
        assert [states[m]["events_processed"] for m in members] == [STOP_EVENTS, STOP_EVENTS]
        assert await failed_tasks(client, members) == []
    finally:
        await stop(worker)


async def test_no_task_fails_in_any_run_of_a_flooded_member(deployment: Deployment) -> None:
    """The history itself: no WorkflowTaskFailed, and drain timers, not one huge task."""
    client, target = deployment.client, deployment.target
    member = "flood-history"
    events = [purchase(member, f"h-{n}", n) for n in range(4_000)]
    async with deployment.worker():
        await flood(
            client, target.task_queue, member, [events[i : i + 500] for i in range(0, 4_000, 500)]
        )
        await wait_applied(client, [member])
        history = await client.get_workflow_handle(member_workflow_id(member)).fetch_history()
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
    assert kinds.count(EventType.EVENT_TYPE_TIMER_FIRED) >= 3


async def test_oversized_update_fields_are_refused_and_nothing_is_kept(
    deployment: Deployment,
) -> None:
    """Ids and reasons of updates are kept across runs: a client can't make them huge."""
    client, target = deployment.client, deployment.target
    member = "bounds"
    async with deployment.worker():
        await flood(client, target.task_queue, member, [[purchase(member, "p1", 1)]])
        before = (await wait_applied(client, [member]))[member]
        handle = client.get_workflow_handle(member_workflow_id(member))
        cases = [
            (Adjustment(10, "x" * 600_000, "ops", "r1"), "reason must be text of at most 500"),
            (Adjustment(10, "ok", "ops", "r" * 300), "request_id is longer than 200 bytes"),
            (Adjustment(10, "ok", "a" * 201, "r2"), "actor must be text of at most 200"),
            (Adjustment(2_000_000, "ok", "ops", "r3"), "limited to 1,000,000"),
        ]
        for request, reason in cases:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(MemberWorkflow.adjust, request)
            assert reason in str(refused.value.cause), refused.value.cause
        decision = Decision(f"{member}:x:0", True, "y" * 10_000, "ops")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(MemberWorkflow.decide, decision)  # type: ignore[arg-type]
        assert "reason must be text of at most 500" in str(refused.value.cause)
        after = (await wait_applied(client, [member]))[member]
        assert await failed_tasks(client, [member]) == []
    assert after["points"] == before["points"] and after["ledger"] == before["ledger"]


async def test_a_flood_of_hostile_cancellations_returns_each_redemption_once(
    deployment: Deployment,
) -> None:
    """5,000 `redemption_cancelled` events sent back to back by a plain client: the same
    three cancellations again and again, the longest ids and reasons the contract allows,
    ids no redemption has, reasons that are no text. Each redemption comes back once, every
    other event is refused with its reason, no task fails, and what the member carries
    into its next runs stays under the budget."""
    client, target = deployment.client, deployment.target
    member = "cancel-flood"
    earned = [purchase(member, f"{member}-p{n}", 4_000 + n) for n in range(40)]
    mine = [f"{member}-r{n}" for n in range(3)]
    refers = [*mine, f"000000{LONG_TAIL}", "no-such-redemption"]
    reasons: list[object] = [
        "\U0001d538" * MAX_REASON_CHARS,
        "fare dispute",
        None,
        ["x"],
        7,
        "x" * (MAX_REASON_CHARS + 1),
    ]

    def cancellation(n: int) -> dict[str, Any]:
        return {
            "type": "redemption_cancelled",
            "event_id": f"{n:06d}{LONG_TAIL}",
            "member_id": member,
            "occurred_at": f"2026-04-{1 + n // 200:02d}T{n // 10 % 20:02d}:{n % 10:02d}:00Z",
            "refers_to": refers[n % len(refers)],
            "reason": reasons[n // len(refers) % len(reasons)],
        }

    flooded = [cancellation(n) for n in range(5_000)]
    async with deployment.worker():
        await flood(client, target.task_queue, member, [earned])
        before = (await wait_applied(client, [member]))[member]
        for request_id in mine:
            await rewards.redeem(client, target, member, "coffee", request_id=request_id)
        await flood(
            client, target.task_queue, member, [flooded[i : i + 100] for i in range(0, 5_000, 100)]
        )
        state = (await wait_applied(client, [member]))[member]
        assert await failed_tasks(client, [member]) == []
        sizes = await run_inputs(client, member)
        # and it still takes ordinary events
        late = purchase(member, f"{member}-late", 1)
        await client.get_workflow_handle(member_workflow_id(member)).signal(SIGNAL_EVENTS, [late])
        after = (await wait_applied(client, [member]))[member]
    returned = [e for e in state["ledger"] if e["kind"] == "redemption_cancelled"]
    assert sorted(e["cause"] for e in returned) == mine and {e["delta"] for e in returned} == {300}
    assert state["points"] == before["points"]  # 3 x 300 spent, 3 x 300 back
    by_id = {r["request_id"]: r for r in state["redemptions"]}
    assert [by_id[r]["status"] for r in mine] == ["cancelled"] * 3
    assert state["events_processed"] == before["events_processed"] + 3
    assert state["events_rejected"] == before["events_rejected"] + 5_000 - 3
    why = {r["reason"] for r in state["rejections"]}
    assert any("was already cancelled" in r for r in why), why
    assert any("no redemption" in r for r in why), why
    assert "reason must be a string, got ['x']" in why and "reason must be a string, got 7" in why
    assert f"reason is {MAX_REASON_CHARS + 1} characters, the limit is {MAX_REASON_CHARS}" in why
    assert len(sizes) >= 2 and max(sizes) < CARRY_BUDGET, sizes
    assert after["events_processed"] == state["events_processed"] + 1


async def test_a_member_the_server_ended_for_its_history_size_is_not_fed_from_empty(
    deployment: Deployment,
) -> None:
    """A client that sends more than the server keeps in one run (50 MB of history, here
    40 signals of 1.6 MB at once, faster than any member can continue as new) gets the
    member terminated by the server: Temporal's limit, which no workflow code can stop.
    What the desk guarantees is that nothing is lost after it: the feed does not start
    the member again from no points, and says why."""
    client, target = deployment.client, deployment.target
    member = "history-limit"
    chunks = [
        [purchase(member, f"{k * 1_000 + n:06d}{LONG_TAIL}", n) for n in range(1_000)]
        for k in range(41)
    ]
    handle = client.get_workflow_handle(member_workflow_id(member))
    async with deployment.worker():
        await flood(client, target.task_queue, member, chunks[:1])
        before = (await wait_applied(client, [member]))[member]
        await asyncio.gather(
            *(handle.signal(SIGNAL_EVENTS, c) for c in chunks[1:]), return_exceptions=True
        )
        ended = await handle.describe()
        assert ended.status == WorkflowExecutionStatus.TERMINATED
        later = purchase(member, f"{member}-later", 1)
        batch = check([(1, later)])
        report = await deliver(client, target, batch)
        again = await handle.describe()
    assert before["events_processed"] == 1_000
    assert again.run_id == ended.run_id and again.status == WorkflowExecutionStatus.TERMINATED
    (reject,) = report.rejects
    assert reject.reason.startswith(
        f"member {member}'s workflow is terminated (Workflow history size exceeds limit.)"
    ), reject.reason
    assert (reject.line, reject.sent, report.accepted) == (1, False, 0)
