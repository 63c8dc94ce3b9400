"""Test helpers for driving member workflows and checking them against the rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.client import Client

from runtime.connect import Target
from runtime.feed import send_member, wait_applied
from workflows.member import MemberInput, MemberWorkflow, member_workflow_id
from workflows.rules import replay

COMPARED = (
    "points",
    "tier",
    "lifetime_points",
    "window_points",
    "events_processed",
    "events_rejected",
    "duplicates_ignored",
    "last_event_at",
)


def trip(
    member: str, n: int, fare: int = 2_500, day: int = 1, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "trip_completed",
        "event_id": event_id or f"{member}-t{n}",
        "member_id": member,
        "occurred_at": f"2026-03-{day:02d}T10:{n % 60:02d}:00Z",
        "fare_cents": fare,
    }


def expected_state(member: str, events: list[Any]) -> dict[str, Any]:
    return replay(member, events).summary()


def assert_matches_rules(state: dict[str, Any], member: str, events: list[Any]) -> None:
    """The workflow's state equals the pure rules applied to the same events."""
    expected = expected_state(member, events)
    assert {k: state[k] for k in COMPARED} == {k: expected[k] for k in COMPARED}
    assert [(e["kind"], e["cause"], e["delta"], e["balance"]) for e in state["ledger"]] == [
        (e["kind"], e["cause"], e["delta"], e["balance"]) for e in expected["ledger"]
    ]
    assert state["ledger_base"] + sum(e["delta"] for e in state["ledger"]) == state["points"]


async def start_member(
    client: Client, target: Target, member: str, *, max_signals: int, max_events: int = 10_000
) -> None:
    """Start a member with small continue-as-new thresholds (carried across runs)."""
    await client.start_workflow(
        MemberWorkflow.run,
        MemberInput(member_id=member, max_signals=max_signals, max_events=max_events),
        id=member_workflow_id(member),
        task_queue=target.task_queue,
    )


async def feed_and_sync(
    client: Client, target: Target, member: str, events: list[Any], *, bulk: bool = False
) -> dict[str, Any]:
    await send_member(client, target, member, events, bulk=bulk)
    return (await wait_applied(client, [member]))[member]


async def state_when(
    client: Client, member: str, check: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The member's state once `check` holds for it (asked again until `timeout`)."""
    from tests.conftest import eventually

    handle = client.get_workflow_handle(member_workflow_id(member))

    async def probe() -> dict[str, Any] | None:
        state: dict[str, Any] = await handle.query(MemberWorkflow.state)
        return state if check(state) else None

    result: dict[str, Any] = await eventually(probe, timeout=timeout)
    return result
