"""The embedded server supervisor against the real `temporal` binary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from runtime.server import (
    SEARCH_ATTRIBUTES,
    EmbeddedServer,
    ServerConfig,
    ServerError,
    default_data_dir,
    find_running_server,
    private_network_available,
)
from workflows.search_attributes import EFFECT_STATUS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    server = EmbeddedServer(ServerConfig(data_dir=tmp_path / "data", headless_ui=False))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_data_dir_of_an_older_build_gets_the_search_attributes_added_since(
    tmp_path: Path,
) -> None:
    """`start-dev` registers its --search-attribute flags only for a new database: an
    attribute a later build added (the effects' status, say) is registered at start."""
    config = ServerConfig(data_dir=tmp_path / "data", headless_ui=True)

    async def registered(server: EmbeddedServer) -> set[str]:
        client = await Client.connect(server.address)
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        return set(listed.custom_attributes)

    async with EmbeddedServer(config) as server:
        client = await Client.connect(server.address)
        # as a database made before the effects existed
        await client.operator_service.remove_search_attributes(
            RemoveSearchAttributesRequest(
                namespace="default", search_attributes=["LoyaltyEffectStatus"]
            )
        )
        assert "LoyaltyEffectStatus" not in await registered(server)
    async with EmbeddedServer(config) as server:
        assert set(SEARCH_ATTRIBUTES) <= await registered(server)
        # usable at once: the server keeps the attributes it read (forced refreshes off,
        # see server_files.DYNAMIC_CONFIG), so it was started again after adding one
        client = await Client.connect(server.address)
        handle = await client.start_workflow(
            "EffectWorkflow",
            id="effect-right-after-the-upgrade",
            task_queue="nobody-polls",
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(EFFECT_STATUS, "pending")]
            ),
        )
        described = await handle.describe()
        assert described.typed_search_attributes.get(EFFECT_STATUS) == "pending"


async def test_start_registers_attributes_and_retention_and_stop_cleans_up(
    server: EmbeddedServer,
) -> None:
    client = await Client.connect(server.address)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    registered = {
        name: IndexedValueType.Name(kind) for name, kind in listed.custom_attributes.items()
    }
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert registered.get(name) == f"INDEXED_VALUE_TYPE_{kind.upper()}"
    namespace = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert namespace.config.workflow_execution_retention_ttl.seconds == 30 * 86400
    data_dir = server.config.data_dir
    info = find_running_server(data_dir)
    assert info is not None and info["address"] == server.address and info["pid"] == server.pid
    assert server.ui_url is not None and _port_open(int(server.ui_url.rsplit(":", 1)[1]))
    if private_network_available():
        assert server.private and server.address == f"unix://{data_dir / 'temporal.sock'}"

    pid = server.pid
    assert pid is not None
    temporal = _children(pid)
    assert len(temporal) == 1  # the server, under its launcher
    await server.stop()
    assert server.state == "stopped" and server.pid is None
    assert _process_gone(pid) and _process_gone(temporal[0])
    assert not (data_dir / "server.json").exists()
    assert not (data_dir / "temporal.sock").exists()
    assert not _port_open(int(server.ui_url.rsplit(":", 1)[1]))
    assert find_running_server(data_dir) is None


@pytest.mark.slow
async def test_killed_server_is_restarted_on_same_address_with_its_data(
    server: EmbeddedServer,
) -> None:
    states: list[str] = []
    server.on_state_changed = states.append
    client = await Client.connect(server.address)
    await client.start_workflow("Anything", id="before-crash", task_queue="nobody")
    old_pid, address = server.pid, server.address
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)
    await _wait_for(lambda: server.state == "running" and server.restarts == 1, timeout=15)

    assert states == ["restarting", "running"]
    assert server.last_error == "server was killed by SIGKILL unexpectedly"
    assert server.address == address and server.pid not in (None, old_pid)
    info = find_running_server(server.config.data_dir)
    assert info is not None and info["pid"] == server.pid and info["address"] == address
    client = await Client.connect(address)
    description = await client.get_workflow_handle("before-crash").describe()
    assert description.workflow_type == "Anything"


async def test_clean_restart_on_same_data_dir_keeps_workflows(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "data")
    async with EmbeddedServer(config) as first:
        client = await Client.connect(first.address)
        await client.start_workflow("Anything", id="kept", task_queue="nobody")
    assert list((tmp_path / "data" / "logs").iterdir()) == [tmp_path / "data/logs/server.log"]

    async with EmbeddedServer(config) as second:
        client = await Client.connect(second.address)
        description = await client.get_workflow_handle("kept").describe()
        assert description.workflow_type == "Anything"
    # The previous run's log is kept, one generation deep.
    assert (tmp_path / "data" / "logs" / "server.log.1").exists()


async def test_second_server_on_same_data_dir_is_refused(server: EmbeddedServer) -> None:
    data_dir = server.config.data_dir
    second = EmbeddedServer(ServerConfig(data_dir=data_dir))
    expected = f"an embedded server is already running for {data_dir} at {server.address}"
    with pytest.raises(ServerError, match=expected):
        await second.start()
    assert second.state == "stopped"
    assert find_running_server(data_dir) is not None  # the first one is untouched


async def test_a_picked_port_taken_before_the_server_binds_it_is_replaced(
    tmp_path: Path,
) -> None:
    """A free port is free only until someone binds it (other servers start too): the
    server starts on other ports instead of failing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # on 127.0.0.1: in a private network no port is ever taken
        server = EmbeddedServer(ServerConfig(data_dir=tmp_path / "data", private_network=False))
        server._port = port  # what another process took between our pick and the bind
        async with server:
            assert server.state == "running" and server.address != f"127.0.0.1:{port}"
            client = await Client.connect(server.address)
            await client.start_workflow("Anything", id="after-a-taken-port", task_queue="nobody")
    log = (tmp_path / "data" / "logs" / "server.log").read_text()
    assert log.count(" launching: ") == 2 and "address already in use" in log


async def test_start_failure_reports_the_server_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ServerConfig(data_dir=tmp_path / "data", port=port, private_network=False)
        server = EmbeddedServer(config)
        with pytest.raises(ServerError) as failure:
            await server.start(timeout=15)
    assert "exited with code" in failure.value.reason
    assert "address already in use" in failure.value.log_tail
    assert server.state == "failed" and server.pid is None
    # The lock was released: the data dir is usable again.
    async with EmbeddedServer(ServerConfig(data_dir=tmp_path / "data")) as retry:
        assert retry.state == "running"


@pytest.mark.slow
async def test_server_that_keeps_dying_ends_failed(server: EmbeddedServer) -> None:
    states: list[str] = []
    server.on_state_changed = states.append
    pid = server.pid
    assert pid is not None
    assert server.ui_url is not None
    ui_port = int(server.ui_url.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    await _wait_for(lambda: not _port_open(ui_port), timeout=5)
    # Holding its Web UI port makes every relaunch die at once.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ui_port))
        squatter.listen()
        await _wait_for(lambda: server.state == "failed", timeout=30)
    assert states == ["restarting", "failed"]
    assert server.restarts == 4
    assert server.last_error == "temporal server exited with code 1 while starting"
    assert not (server.config.data_dir / "server.json").exists()


@pytest.mark.slow
async def test_server_that_stops_answering_is_replaced(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runtime.server.HUNG_AFTER_CHECKS", 2)
    hung_pid = server.pid
    assert hung_pid is not None
    os.kill(hung_pid, signal.SIGSTOP)  # alive, but answers nothing
    await _wait_for(lambda: server.state == "running" and server.restarts == 1, timeout=20)
    assert _process_gone(hung_pid)
    assert "stopped answering" in (server.last_error or "")
    client = await Client.connect(server.address)
    assert await client.service_client.check_health()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux only")
async def test_no_orphan_when_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys, pathlib\n"
        "from runtime.server import EmbeddedServer, ServerConfig\n"
        "async def main():\n"
        "    server = EmbeddedServer(ServerConfig(pathlib.Path(sys.argv[1])))\n"
        "    await server.start()\n"
        "    print(server.pid, flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(tmp_path / "data"),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert parent.stdout is not None
    pid = int(await asyncio.wait_for(parent.stdout.readline(), timeout=30))
    pids = [pid, *_children(pid)]  # the launcher and, with a private network, the server
    try:
        assert not any(_process_gone(p) for p in pids)
        parent.kill()
        await parent.wait()
        # The server's other threads may still be exiting while its main one is a zombie.
        await _wait_for(
            lambda: (
                all(_process_gone(p) for p in pids)
                and find_running_server(tmp_path / "data") is None
            ),
            timeout=5,
        )
    finally:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


@pytest.mark.slow
async def test_run_foreground_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib\n"
        "from runtime.server import ServerConfig, run_foreground\n"
        "sys.exit(run_foreground(ServerConfig(pathlib.Path(sys.argv[1])), print_json=True))\n"
    )
    data_dir = tmp_path / "data"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(data_dir),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        info = json.loads(line)
        assert find_running_server(data_dir) is not None
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
    assert _process_gone(info["pid"])
    assert not (data_dir / "server.json").exists()
    assert await process.stdout.read() == b""  # the server's own output went to the log
    assert (data_dir / "logs" / "server.log").stat().st_size > 0


def test_default_data_dir_can_be_overridden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LOYALTY_DESK_DATA_DIR", raising=False)
    assert default_data_dir().name == "loyalty-desk"
    monkeypatch.setenv("LOYALTY_DESK_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path


async def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


def _process_gone(pid: int) -> bool:
    """Gone or a zombie: a container's init may never reap the reparented child."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def test_nothing_in_the_data_dir_is_open_to_other_users(tmp_path: Path) -> None:
    """After a real start as the operator runs it (`server`, `worker`, `feed` with a line
    it rejects, `model` settings), every directory in the data dir is 0700 and every file
    0600 (the database holds every ticket's text), also what an older version left open."""
    from tests.kit.headless import run, spawn, stop

    data_dir = tmp_path / "desk"
    data_dir.mkdir()
    data_dir.chmod(0o755)  # as an older version made it
    (data_dir / "logs").mkdir()
    (data_dir / "logs" / "server.log").write_text("an older run\n")
    (data_dir / "logs" / "server.log").chmod(0o644)
    server = await spawn("server", data_dir=data_dir)
    worker = None
    try:
        await _wait_for(lambda: find_running_server(data_dir) is not None, timeout=30)
        worker = await spawn("worker", data_dir=data_dir)
        assert worker.stdout is not None
        assert b"worker for build" in await asyncio.wait_for(worker.stdout.readline(), 60)
        events = tmp_path / "events.jsonl"
        good = {"type": "purchase", "event_id": "p1", "member_id": "ann"}
        good |= {"occurred_at": "2026-03-02T10:00:00Z", "amount_cents": 12_000}
        events.write_text(json.dumps(good) + "\n{oops\n")
        await run("feed", str(events), "--wait", data_dir=data_dir)
        modes = _modes(data_dir)
        assert {"temporal.sqlite", "logs/feed-rejects.jsonl", "server.json"} <= set(modes)
    finally:
        if worker is not None:
            await stop(worker)
        await stop(server)
    assert data_dir.stat().st_mode & 0o7777 == 0o700
    for seen in (modes, _modes(data_dir)):  # running, and after
        open_to_others = {name: mode for name, mode in seen.items() if mode & 0o077}
        assert open_to_others == {}, seen


def _modes(directory: Path) -> dict[str, int]:
    """Permission bits of everything under `directory`."""
    return {str(p.relative_to(directory)): p.lstat().st_mode & 0o7777 for p in directory.rglob("*")}


async def test_a_data_dir_too_deep_for_a_socket_address_gets_a_private_temp_dir(
    tmp_path: Path,
) -> None:
    if not private_network_available():
        pytest.skip("this machine allows no private network: no socket")
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)  # a socket path fits in 108 bytes
    async with EmbeddedServer(ServerConfig(data_dir=data_dir)) as server:
        socket_dir = Path(server.address.removeprefix("unix://")).parent
        assert socket_dir != data_dir and socket_dir.stat().st_mode & 0o777 == 0o700
        client = await Client.connect(server.address)
        assert await client.service_client.check_health()
    assert not socket_dir.exists()
