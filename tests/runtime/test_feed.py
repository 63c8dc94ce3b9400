"""Reading JSON Lines for `feed`: every bad line becomes a reported reject, never a crash."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from runtime import feed
from runtime.feed import check, deliver, read_lines, wait_applied
from tests.chaos.kit import failed_tasks
from tests.conftest import Deployment
from tests.kit.cli import cli
from tests.kit.events import member_events
from tests.memberkit import assert_matches_rules
from workflows.contract import UPDATE_SYNC
from workflows.events import EventError
from workflows.ids import member_workflow_id


def test_unreadable_lines_are_rejects_with_reasons() -> None:
    good = (
        '{"type":"purchase","event_id":"e1","member_id":"m1",'
        '"occurred_at":"2026-01-01T00:00:00Z","amount_cents":500}'
    )
    lines = [good, "[" * 5_000 + "]" * 5_000, '{"amount_cents": ' + "9" * 5_000 + "}", "{oops"]
    numbered = list(read_lines(io.StringIO("\n".join(lines) + "\n")))
    assert [n for n, _ in numbered] == [1, 2, 3, 4]
    assert all(isinstance(value, EventError) for _, value in numbered[1:])
    batch = check(numbered)
    assert batch.report.accepted == 1
    assert [(r.line, r.sent) for r in batch.report.rejects] == [(2, False), (3, False), (4, False)]
    assert all(r.reason and "\n" not in r.reason for r in batch.report.rejects)


async def test_a_large_bulk_feed_for_one_member_is_applied_in_full(deployment: Deployment) -> None:
    """12,000 events for one member in bulk: the feeder keeps a bounded window of signals
    in flight, so no workflow task has to apply them all at once; every event counts and
    no workflow task failed on the way."""
    member_id = f"bulk-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC) - timedelta(days=20)  # 12,000 minutes: all in the past
    events = [
        {
            "type": "trip_completed" if n % 3 else "purchase",
            "event_id": f"{member_id}-{n}",
            "member_id": member_id,
            "occurred_at": (start + timedelta(minutes=2 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fare_cents" if n % 3 else "amount_cents": 1_000 + n % 4_000,
        }
        for n in range(12_000)
    ]
    batch = check(enumerate(events, start=1))
    async with deployment.worker("1.0"):
        report = await deliver(deployment.client, deployment.target, batch, bulk=True)
        assert report.signals >= 24  # chunks of at most 500 events
        state = (await wait_applied(deployment.client, [member_id]))[member_id]
    assert state["events_processed"] + state["events_rejected"] == len(events)
    assert_matches_rules(state, member_id, events)
    assert await failed_tasks(deployment.client, [member_id]) == []


async def test_a_sync_sent_again_is_one_update_in_the_member(
    deployment: Deployment, monkeypatch: Any
) -> None:
    """While no worker serves a member, the feed's `sync` goes unanswered and is sent again
    every SYNC_ATTEMPT_S. The copies carry one update id, so once a worker is back the
    member runs the update once (it ran once per copy, each copy a pending update)."""
    member_id = f"resend-{uuid.uuid4().hex[:6]}"
    events = member_events(member_id, "a", 3, 1)
    batch = check(enumerate(events, start=1))
    async with deployment.worker("1.0"):
        await deliver(deployment.client, deployment.target, batch)
        await wait_applied(deployment.client, [member_id])
    monkeypatch.setattr(feed, "SYNC_ATTEMPT_S", 0.4)
    waiting = asyncio.ensure_future(wait_applied(deployment.client, [member_id]))
    await asyncio.sleep(2.5)  # about six attempts, with no worker to answer any
    assert not waiting.done()
    async with deployment.worker("1.0"):
        state = (await asyncio.wait_for(waiting, 60))[member_id]
        handle = deployment.client.get_workflow_handle(member_workflow_id(member_id))
        history = await handle.fetch_history()
    assert state["events_processed"] == 3
    names = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert names.count(UPDATE_SYNC) == 2  # the first wait_applied's, then one


@pytest.mark.parametrize("bulk", [False, True])
async def test_a_terminated_member_is_not_started_again_from_empty(
    deployment: Deployment, bulk: bool
) -> None:
    """A member runs for ever; one whose workflow was ended (by hand, or by the server
    when a run's history passed its size limit) is not started again by the next event,
    which would begin from no points at all. Its events are refused with the reason and
    kept in the rejects log, to feed again once it is repaired."""
    client, target = deployment.client, deployment.target
    member_id = f"ended-{uuid.uuid4().hex[:6]}"
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    async with deployment.worker("1.0"):
        await deliver(client, target, check(enumerate(member_events(member_id, "a", 3, 1), 1)))
        before = (await wait_applied(client, [member_id]))[member_id]
        ended = await handle.describe()
        await handle.terminate(reason="ended by hand")
        later = [*member_events(member_id, "b", 3, 2), {"type": "bogus", "member_id": member_id}]
        batch = check(enumerate(later, start=10))
        report = await deliver(client, target, batch, bulk=bulk)
        assert await wait_applied(client, batch.by_member) == {}  # nothing to wait for
        after = await handle.describe()
        if not bulk:  # `member ID` shows its last state, and that it is not running
            code, out, err = await cli(deployment, "member", member_id)
            assert code == 0, err
            assert out.startswith(
                "NOT RUNNING: the member's workflow is terminated (ended by hand); it takes "
                "no events until it is repaired (reset)."
            ), out
            code, out, err = await cli(deployment, "member", member_id, "--json")
            shown = json.loads(out)
            assert shown["workflow_closed"] == "terminated (ended by hand)"
            assert shown["points"] == before["points"]
    assert before["points"] > 0
    assert (after.run_id, after.status) == (ended.run_id, WorkflowExecutionStatus.TERMINATED)
    assert (report.accepted, report.rejected, report.duplicates) == (0, 4, 0)
    closed = [r for r in report.rejects if r.line in (10, 11, 12)]
    assert [(r.line, r.event_id, r.sent) for r in closed] == [
        (10, f"{member_id}-b-0", False),
        (11, f"{member_id}-b-1", False),
        (12, f"{member_id}-b-2", False),
    ]
    assert all("is terminated (ended by hand): not started again" in r.reason for r in closed)
    (bogus,) = [r for r in report.rejects if r.line == 13]
    assert bogus.sent is False and "unknown event type" in bogus.reason
