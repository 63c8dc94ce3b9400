"""SIGKILL chaos on the headless path, as an operator runs it (`loyalty-desk server`,
`worker`, `feed`, `rollback` as separate processes on a persistent embedded server):
workers killed every few seconds during a 20,000-event ingest, the server killed and
restarted on the same data dir, the CLI and the worker killed during a rollback. After
each, every member equals the rules applied to its events: none lost, none counted
twice, no member reset twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from runtime.releases import rollback_id
from runtime.server import find_running_server
from tests.chaos.cluster import free_port
from tests.chaos.kit import (
    assert_members_match_rules,
    by_member,
    read_jsonl,
    run,
    sigkill,
    spawn,
    start_worker,
    stop,
    stop_all,
)
from tests.conftest import eventually
from tests.rollback.kit import resets_of
from workflows import drill
from workflows.rollback import RollbackWorkflow


@dataclass
class Desk:
    """An embedded server run by `loyalty-desk server` on a fixed port, and its data dir."""

    data_dir: Path
    logs: Path  # the processes' stderr, one file each
    port: int = field(default_factory=free_port)
    server: asyncio.subprocess.Process | None = None
    started: int = 0

    def options(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)]

    def log(self, name: str) -> Path:
        self.started += 1
        return self.logs / f"{self.started:02d}-{name}.log"

    async def start_server(self) -> Client:
        self.server = await spawn(
            "server",
            "--headless",
            "--port",
            str(self.port),
            *self.options(),
            log=self.log("server"),
        )
        info = await eventually(lambda: find_running_server(self.data_dir), timeout=60)
        return await Client.connect(info["address"])

    async def worker(self, *args: str) -> asyncio.subprocess.Process:
        return await start_worker(*args, *self.options(), log=self.log("worker"))


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    desk = Desk(tmp_path / "desk", tmp_path / "logs")
    await desk.start_server()
    try:
        yield desk
    finally:
        if desk.server is not None:
            await stop(desk.server)


async def feed(desk: Desk, out: Path, *args: str) -> dict[str, list[dict[str, Any]]]:
    """Run `feed --simulate ...`; what it sent, per member."""
    report = await run("feed", *args, "--out", str(out), *desk.options())
    assert report["rejected"] == 0
    return by_member(read_jsonl(out))


def merge(*waves: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    merged: dict[str, list[dict[str, Any]]] = {}
    for wave in waves:
        for member, events in wave.items():
            merged.setdefault(member, []).extend(events)
    return merged


KILLS = 3


@pytest.mark.timeout(600)
async def test_workers_sigkilled_every_few_seconds_during_a_20000_event_ingest(
    desk: Desk, tmp_path: Path
) -> None:
    """18,000 events in bulk signals and 2,000 one signal each, fed at the same time,
    while one of two workers is SIGKILLed (and replaced) every 3 seconds."""
    workers = [await desk.worker(), await desk.worker()]
    files = {"bulk": tmp_path / "bulk.jsonl", "live": tmp_path / "live.jsonl"}
    feeds = [
        await spawn(
            "feed",
            "--simulate",
            "18000",
            "--members",
            "160",
            "--prefix",
            "bulk",
            "--bulk",
            "--out",
            str(files["bulk"]),
            "--json",
            *desk.options(),
        ),
        await spawn(
            "feed",
            "--simulate",
            "2000",
            "--members",
            "40",
            "--prefix",
            "live",
            "--out",
            str(files["live"]),
            "--json",
            *desk.options(),
        ),
    ]
    try:
        for kill in range(KILLS):
            await asyncio.sleep(3)
            await sigkill(workers[kill % 2])
            workers[kill % 2] = await desk.worker()
        for proc in feeds:
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()[-2000:]
            assert json.loads(out)["rejected"] == 0
        info = find_running_server(desk.data_dir)
        assert info is not None
        client = await Client.connect(info["address"])
        fed = merge(*(by_member(read_jsonl(f)) for f in files.values()))
        assert len(fed) == 200
        states = await assert_members_match_rules(client, fed)
        assert sum(s["events_processed"] for s in states.values()) == 20_000
    finally:
        await stop_all([*feeds, *workers])


async def test_server_sigkilled_and_restarted_on_the_same_data_dir_loses_nothing(
    desk: Desk, tmp_path: Path
) -> None:
    worker = await desk.worker()
    try:
        # 1: the Temporal server itself is killed while the worker applies a bulk wave;
        # the supervisor relaunches it on the same port and SQLite file
        one = await feed(
            desk,
            tmp_path / "one.jsonl",
            "--simulate",
            "6000",
            "--members",
            "120",
            "--seed",
            "21",
            "--bulk",
        )
        before = find_running_server(desk.data_dir)
        assert before is not None
        os.kill(int(before["pid"]), signal.SIGKILL)

        def relaunched() -> dict[str, Any] | None:
            info = find_running_server(desk.data_dir)
            return info if info and info["pid"] != before["pid"] else None

        after = await eventually(relaunched, timeout=60, interval=0.2)
        assert after["address"] == before["address"]

        # 2: the supervisor is killed too (its server dies with it), and a new
        # `loyalty-desk server` starts on the same data dir
        two = await feed(
            desk,
            tmp_path / "two.jsonl",
            "--simulate",
            "6000",
            "--members",
            "120",
            "--seed",
            "22",
            "--bulk",
        )
        assert desk.server is not None
        await sigkill(desk.server)
        await eventually(lambda: find_running_server(desk.data_dir) is None, timeout=30)
        client = await desk.start_server()
        assert worker.returncode is None, "the worker did not ride out the server restarts"
        states = await assert_members_match_rules(client, merge(one, two))
        assert sum(s["events_processed"] for s in states.values()) == 12_000
    finally:
        await stop(worker)


BAD = drill.drill_build_id("2.0", "zero-on-trip")


@pytest.mark.timeout(600)
async def test_cli_and_worker_killed_during_a_rollback_which_a_new_worker_finishes(
    desk: Desk, tmp_path: Path
) -> None:
    info = find_running_server(desk.data_dir)
    assert info is not None
    client = await Client.connect(info["address"])
    waves = ["--simulate", "160", "--members", "12", "--prefix", "rb", "--wait"]
    workers = [await desk.worker("--build-id", "1.0")]  # current: it polled first
    # the bad build and the fix start polling while wave one is fed; neither is current
    later = asyncio.gather(
        desk.worker("--build-id", "2.0", "--drill", "zero-on-trip"),
        desk.worker("--build-id", "2.1"),
    )
    try:
        one = await feed(desk, tmp_path / "one.jsonl", *waves, "--seed", "31")
        workers.extend(await later)
        await run("release", "set-current", BAD, "--reason", "chaos drill", *desk.options())
        two = await feed(desk, tmp_path / "two.jsonl", *waves, "--seed", "32")
        await run("release", "set-current", "2.1", "--reason", "the fix", *desk.options())
        three = await feed(desk, tmp_path / "three.jsonl", *waves, "--seed", "33")
        fed = merge(one, two, three)

        rollback = await spawn(
            "rollback",
            BAD,
            "--execute",
            "--reason",
            "chaos: killed mid-way",
            "--rate",
            "3",
            "--concurrency",
            "2",
            "--json",
            *desk.options(),
        )
        handle = client.get_workflow_handle_for(RollbackWorkflow.run, rollback_id(BAD))

        async def resetting() -> bool:
            try:
                progress = await handle.query(RollbackWorkflow.progress)
            except RPCError:
                return False  # not started yet
            return progress.counts.get("reset", 0) >= 1

        await eventually(resetting, timeout=120, interval=0.3)
        await sigkill(rollback)
        await sigkill(workers[2])
        workers[2] = await desk.worker("--build-id", "2.1")
        result = await asyncio.wait_for(handle.result(), 300)

        assert result.state == "done"
        assert result.counts.get("failed", 0) == 0, result.counts
        repaired = result.counts.get("reset", 0) + result.counts.get("already-repaired", 0)
        assert repaired == result.total and result.total >= 1
        assert result.verified_ok == result.total and result.mismatches == []
        for member in fed:
            assert await resets_of(client, member) <= 1, f"{member} was reset twice"
        await assert_members_match_rules(client, fed)
    finally:
        if len(workers) == 1:  # failed before the later workers joined: stop them too
            with contextlib.suppress(Exception):
                workers.extend(await later)
        await stop_all(workers)
