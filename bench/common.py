"""Shared pieces of the benchmarks: a real embedded server, a worker process, timing."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from runtime.connect import Target
from runtime.server import DEFAULT_SQLITE_PRAGMAS, EmbeddedServer, ServerConfig

SYNC_ATTEMPTS = 3


@dataclass
class Bench:
    client: Client
    server: EmbeddedServer
    task_queue: str
    deployment: str
    data_dir: Path
    worker: asyncio.subprocess.Process | None = None

    def target(self) -> Target:
        """The connection target a front end would use for this bench's deployment."""
        return Target(
            address=self.server.address,
            namespace="default",
            data_dir=self.data_dir,
            task_queue=self.task_queue,
            deployment=self.deployment,
        )

    def cpu_seconds(self) -> float:
        """Processor time the server and the worker used so far: unlike elapsed time,
        barely moved by other work on the machine."""
        pids = [p for p in (self.server.pid, self.worker.pid if self.worker else None) if p]
        # the server's pid is its launcher (runtime/private_net.py): count the server too
        return sum(process_cpu_seconds(pid) for pid in with_children(pids))


def with_children(pids: list[int]) -> list[int]:
    """`pids` and their descendants (Linux: from /proc)."""
    found, seen = list(pids), 0
    while seen < len(found):
        for task in Path(f"/proc/{found[seen]}/task").glob("*"):
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        seen += 1
    return found


def process_cpu_seconds(pid: int) -> float:
    """User + system time of one process (Linux: from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@asynccontextmanager
async def embedded(
    pragmas: tuple[str, ...] = DEFAULT_SQLITE_PRAGMAS,
    *,
    worker: bool = True,
    private_network: bool | None = None,
    metrics_port: int | None = None,
) -> AsyncIterator[Bench]:
    """A fresh persistent embedded server (the app's settings) and a worker process."""
    with tempfile.TemporaryDirectory(prefix="ld-bench-") as tmp:
        config = ServerConfig(
            data_dir=Path(tmp),
            headless_ui=True,
            sqlite_pragmas=pragmas,
            private_network=private_network,
            metrics_port=metrics_port,
        )
        async with EmbeddedServer(config) as server:
            client = await Client.connect(server.address)
            suffix = uuid.uuid4().hex[:6]
            bench = Bench(client, server, f"bench-{suffix}", f"bench-{suffix}", Path(tmp))
            if worker:
                bench.worker = await start_worker(bench)
            try:
                yield bench
            finally:
                if bench.worker is not None:
                    await stop(bench.worker)


async def start_worker(
    bench: Bench, build_id: str = "bench", *, namespace: str = "default", drill: str | None = None
) -> asyncio.subprocess.Process:
    args = [
        sys.executable,
        "-m",
        "bench.worker",
        "--address",
        bench.server.address,
        "--task-queue",
        bench.task_queue,
        "--deployment",
        bench.deployment,
        "--build-id",
        build_id,
        "--namespace",
        namespace,
        "--data-dir",
        str(bench.data_dir),
    ]
    if drill:
        args += ["--drill", drill]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"bench worker did not start: {line!r}")
    return proc


async def stop(proc: asyncio.subprocess.Process, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL: a worker whose workflow task the SDK took for a deadlock
    keeps that thread and never finishes its graceful shutdown."""
    if proc.returncode is None:
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def synced(handle: WorkflowHandle[Any, Any]) -> Any:
    """The member's `sync` update, retried when the server aborted it: on a busy machine
    it aborts in-flight updates now and then (UNAVAILABLE, "workflow update was
    aborted"), which says nothing about the member."""
    for attempt in range(SYNC_ATTEMPTS):
        try:
            return await handle.execute_update("sync")
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            retryable = isinstance(error, WorkflowUpdateRPCTimeoutOrCancelledError) or (
                error.status == RPCStatusCode.UNAVAILABLE
            )
            if not retryable or attempt == SYNC_ATTEMPTS - 1:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, sort_keys=True))
