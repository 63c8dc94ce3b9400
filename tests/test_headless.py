"""The headless path end to end, as an operator runs it: `loyalty-desk server`,
`loyalty-desk worker` and `loyalty-desk feed` as separate processes on a persistent
embedded server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from runtime.feed import wait_applied
from runtime.server import find_running_server
from tests.conftest import eventually
from tests.kit.cli import temporal_signal_event
from tests.kit.headless import run, spawn, stop
from tests.memberkit import COMPARED
from workflows.member import MemberWorkflow, member_workflow_id
from workflows.rules import replay


@pytest.fixture
async def server_and_worker(tmp_path: Path) -> AsyncIterator[tuple[Path, Client]]:
    data_dir = tmp_path / "desk"
    server = await spawn("server", "--headless", data_dir=data_dir)
    info = await eventually(lambda: find_running_server(data_dir), timeout=30)
    worker = await spawn("worker", data_dir=data_dir)
    assert worker.stdout is not None
    line = await asyncio.wait_for(worker.stdout.readline(), 60)
    assert b"worker for build" in line
    client = await Client.connect(info["address"])
    try:
        yield data_dir, client
    finally:
        await stop(worker)
        await stop(server)


async def test_simulated_traffic_gives_every_member_the_rules_state(
    server_and_worker: tuple[Path, Client], tmp_path: Path
) -> None:
    data_dir, client = server_and_worker
    events_file = tmp_path / "events.jsonl"
    out = await run(
        "feed",
        "--simulate",
        "3000",
        "--members",
        "60",
        "--seed",
        "42",
        "--out",
        str(events_file),
        "--wait",
        "--json",
        data_dir=data_dir,
    )
    report = json.loads(out)
    assert report["accepted"] == 3_000
    assert report["applied"]["events_processed"] == 3_000

    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    by_member: dict[str, list] = {}
    for event in events:
        by_member.setdefault(event["member_id"], []).append(event)
    assert len(by_member) == 60

    async def check_all(duplicates: int) -> None:
        states = await wait_applied(client, by_member)
        for member, mine in by_member.items():
            expected = replay(member, mine).summary()
            same = [k for k in COMPARED if k != "duplicates_ignored"]
            assert {k: states[member][k] for k in same} == {k: expected[k] for k in same}
            assert states[member]["duplicates_ignored"] == duplicates * len(mine)

    await check_all(duplicates=0)
    # the same file again changes nothing
    await run("feed", str(events_file), "--wait", data_dir=data_dir)
    await check_all(duplicates=1)

    # an event sent with the Temporal CLI counts like any other
    member = next(iter(by_member))
    before = (await wait_applied(client, [member]))[member]
    event = {
        "type": "purchase",
        "event_id": "from-temporal-cli",
        "member_id": member,
        "occurred_at": "2026-06-01T12:00:00Z",
        "amount_cents": 10_000,
    }
    info = find_running_server(data_dir)
    assert info is not None
    await temporal_signal_event(info["address"], member, event)
    after = (await wait_applied(client, [member]))[member]
    expected = replay(member, [*by_member[member], event]).summary()
    assert after["events_processed"] == before["events_processed"] + 1
    assert after["points"] == expected["points"]


async def test_restart_on_the_same_data_dir_keeps_every_member(tmp_path: Path) -> None:
    data_dir = tmp_path / "desk"
    server = await spawn("server", "--headless", data_dir=data_dir)
    info = await eventually(lambda: find_running_server(data_dir), timeout=30)
    worker = await spawn("worker", data_dir=data_dir)
    assert worker.stdout is not None
    await asyncio.wait_for(worker.stdout.readline(), 60)
    await run("feed", "--simulate", "300", "--members", "30", "--wait", data_dir=data_dir)
    members = [
        r["member_id"]
        for r in json.loads(await run("members", "--json", "--limit", "1000", data_dir=data_dir))
    ]
    assert len(members) == 30
    client = await Client.connect(info["address"])
    before = await wait_applied(client, members)
    await stop(worker)
    await stop(server)
    assert find_running_server(data_dir) is None

    server = await spawn("server", "--headless", data_dir=data_dir)
    info = await eventually(lambda: find_running_server(data_dir), timeout=30)
    worker = await spawn("worker", data_dir=data_dir)
    assert worker.stdout is not None
    await asyncio.wait_for(worker.stdout.readline(), 60)
    try:
        client = await Client.connect(info["address"])
        states = await wait_applied(client, members)
        assert states == before
        handle = client.get_workflow_handle(member_workflow_id(members[0]))
        assert (await handle.query(MemberWorkflow.state))["events_processed"] == 10
    finally:
        await stop(worker)
        await stop(server)
