"""MemberWorkflow on a real dev server: contract, continue-as-new, dedup, rejects."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import Deployment, eventually
from tests.kit.cli import temporal_signal_event
from tests.memberkit import assert_matches_rules, feed_and_sync, start_member, trip
from workflows.member import Adjustment, MemberWorkflow, member_workflow_id


def new_member() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


async def test_signal_with_start_applies_rules(deployment: Deployment) -> None:
    member = new_member()
    events = [
        trip(member, 1, 2575),
        trip(member, 2, 10000),
        {
            "type": "purchase",
            "event_id": f"{member}-p",
            "member_id": member,
            "occurred_at": "2026-03-02T09:00:00Z",
            "amount_cents": 4999,
        },
        {
            "type": "refund",
            "event_id": f"{member}-r",
            "member_id": member,
            "occurred_at": "2026-03-03T09:00:00Z",
            "refers_to": f"{member}-t2",
        },
    ]
    async with deployment.worker("1.0"):
        state = await feed_and_sync(deployment.client, deployment.target, member, events)
    # 25 + 100 + 49 earned, then the 100 of the refunded trip clawed back
    assert state["points"] == 74
    assert state["lifetime_points"] == 74
    assert state["member_id"] == member
    assert all(e["build"] == "1.0" for e in state["ledger"])
    assert_matches_rules(state, member, events)


async def test_state_survives_continue_as_new_and_dedups_across_runs(
    deployment: Deployment,
) -> None:
    member = new_member()
    events = [trip(member, n, 1_000 + n, day=1 + n // 10) for n in range(60)]
    client, target = deployment.client, deployment.target
    async with deployment.worker("1.0"):
        await start_member(client, target, member, max_signals=5)
        # in groups, each applied before the next is sent: every group crosses the
        # threshold whatever the batching of signals into workflow tasks
        for i in range(0, len(events), 12):
            state = await feed_and_sync(client, target, member, events[i : i + 12])
        first_run = (await client.get_workflow_handle(member_workflow_id(member)).describe()).run_id
        assert state["runs"] >= 4  # 60 signals, a new run after every 5 or more
        assert_matches_rules(state, member, events)
        # resend events the first run already counted: nothing changes
        again = await feed_and_sync(client, target, member, events[:5])
        handle = client.get_workflow_handle(member_workflow_id(member))

        # the 5 resent signals reach the threshold: the member continues as new once its
        # handlers finished (after `sync` answered), carrying what it counted
        async def moved_on() -> dict[str, Any] | None:
            if (await handle.describe()).run_id == first_run:
                return None
            carried: dict[str, Any] = await handle.query(MemberWorkflow.state)
            return carried

        carried = await eventually(moved_on)
    assert again["points"] == state["points"]
    assert again["events_processed"] == 60
    assert again["duplicates_ignored"] == 5
    assert carried["runs"] > state["runs"]
    assert (carried["points"], carried["duplicates_ignored"]) == (state["points"], 5)


async def test_malformed_events_are_rejected_listed_and_the_member_goes_on(
    deployment: Deployment,
) -> None:
    member = new_member()
    client, target = deployment.client, deployment.target
    good = [trip(member, 1), trip(member, 2)]
    bad: list[object] = [
        "not an object",
        {"type": "teleport", "event_id": "x1", "member_id": member},
        {**trip(member, 3), "fare_cents": -5},
        {**trip(member, 4), "fare_cents": 10**12},
        {**trip(member, 5), "occurred_at": "yesterday"},
        {**trip(member, 1), "fare_cents": 9_999},  # same id as a counted trip, other content
    ]
    early = {
        "type": "refund",
        "event_id": "r1",
        "member_id": member,
        "occurred_at": "2026-03-01T12:00:00Z",
        "refers_to": "never-happened",
    }
    async with deployment.worker("1.0"):
        state = await feed_and_sync(client, target, member, [good[0], *bad, early, good[1]])
        # a bulk signal that is not a list
        await client.get_workflow_handle(member_workflow_id(member)).signal("events", {"a": 1})
        state = (await asyncio.gather(feed_and_sync(client, target, member, [])))[0]
        description = await client.get_workflow_handle(member_workflow_id(member)).describe()
    assert description.status is not None and description.status.name == "RUNNING"
    assert state["events_processed"] == 2
    assert state["points"] == 50
    assert state["events_rejected"] == len(bad) + 1
    reasons = [r["reason"] for r in state["rejections"]]
    assert any("JSON object" in r for r in reasons)
    assert any("unknown event type" in r for r in reasons)
    assert any("must be positive" in r for r in reasons)
    assert any("above the limit" in r for r in reasons)
    assert any("ISO 8601" in r for r in reasons)
    # a refund of an event not seen (yet) waits for it instead
    assert [h["refers_to"] for h in state["held"]] == ["never-happened"]
    assert any("already used by a different event" in r for r in reasons)
    assert any("JSON list" in r for r in reasons)
    assert all("\n" not in r for r in reasons)


async def test_member_with_5000_events_continues_as_new_and_is_right(
    deployment: Deployment,
) -> None:
    member = new_member()
    events = [
        trip(member, n, 700 + (n * 37) % 5_000, day=1 + n % 28, event_id=f"{member}-{n}")
        for n in range(5_000)
    ]
    async with deployment.worker("1.0"):
        await feed_and_sync(deployment.client, deployment.target, member, events, bulk=True)
        handle = deployment.client.get_workflow_handle(member_workflow_id(member))

        async def next_run() -> dict | None:
            state = await handle.query(MemberWorkflow.state)
            return state if state["runs"] >= 2 else None

        state = await eventually(next_run)
    assert state["events_processed"] == 5_000
    assert_matches_rules(state, member, events)


async def test_event_sent_with_the_temporal_cli_counts(deployment: Deployment) -> None:
    member = new_member()
    async with deployment.worker("1.0"):
        await feed_and_sync(deployment.client, deployment.target, member, [trip(member, 1)])
        event = trip(member, 2, 4_200)
        await temporal_signal_event(deployment.address, member, event)
        state = await feed_and_sync(deployment.client, deployment.target, member, [])
    assert state["events_processed"] == 2
    assert state["points"] == 25 + 42


async def test_adjustment_update_validates_and_is_idempotent(deployment: Deployment) -> None:
    member = new_member()
    client = deployment.client
    async with deployment.worker("1.0"):
        await feed_and_sync(client, deployment.target, member, [trip(member, 1, 10_000)])
        handle = client.get_workflow_handle(member_workflow_id(member))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                MemberWorkflow.adjust, Adjustment(-500, "typo fix", "ops", "req-1")
            )
        assert "cannot go below zero" in str(refused.value.cause)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(MemberWorkflow.adjust, Adjustment(10, " ", "ops", "req-2"))
        first = await handle.execute_update(
            MemberWorkflow.adjust, Adjustment(40, "goodwill for delay", "ops", "req-3")
        )
        retry = await handle.execute_update(
            MemberWorkflow.adjust, Adjustment(40, "goodwill for delay", "ops", "req-3")
        )
        state = await handle.query(MemberWorkflow.state)
    assert first.applied and not retry.applied
    assert state["points"] == 140
    assert state["ledger"][-1]["kind"] == "adjustment"
    assert "by ops" in state["ledger"][-1]["cause"]
