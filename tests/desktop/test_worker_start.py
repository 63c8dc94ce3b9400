"""Starting a worker of a build is one operation (runtime/workers.py): the window's
Start button and `loyalty-desk release start` leave the same audit entry, name the same
build and write the same log file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import qasync

from desktop.releases_panel import ReleasesPanel
from desktop.session import Session
from runtime import audit_log
from tests.conftest import Deployment
from workflows.drill import drill_build_id

pytestmark = pytest.mark.slow

COMPARED = ("action", "actor", "reason", "subject")


def _cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    t = deployment.target
    options = ["--address", deployment.address, "--namespace", t.namespace]
    options += ["--task-queue", t.task_queue, "--deployment", t.deployment]
    options += ["--data-dir", str(t.data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args, *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _stop(pid: int) -> None:
    """Stop the CLI's worker (not our child: it outlived the command)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def test_the_window_and_the_cli_start_a_drill_worker_alike(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    target = deployment.target
    build = f"8.{uuid.uuid4().hex[:6]}.1"
    full = drill_build_id(build, "zero-on-trip")

    async def scenario() -> None:
        session = Session(target=target, start_worker=False)
        await session.start()
        panel = ReleasesPanel(session=session)
        qtbot.addWidget(panel)
        cli_pid: int | None = None
        try:
            worker = await panel.start_worker(build, "zero-on-trip", "parity")
            loop = asyncio.get_running_loop()
            done = await loop.run_in_executor(
                None,
                lambda: _cli(
                    deployment,
                    "release",
                    "start",
                    build,
                    "--drill",
                    "zero-on-trip",
                    "--reason",
                    "parity",
                    "--json",
                ),
            )
            assert done.returncode == 0, done.stderr
            started = json.loads(done.stdout)
            cli_pid = int(started["pid"])

            # both name the build the worker registers, and log to its own file
            assert worker.command.full_build_id == started["build"] == full
            assert str(worker.command.log_path) == started["log"]
            launches = worker.command.log_path.read_text().count(" launching: ")
            assert launches == 2
            assert not (target.data_dir / "logs" / f"worker-{build}.log").exists()

            assert session.client is not None
            entries = [
                e
                for e in await audit_log.entries(session.client)
                if e["action"] == "release.start" and e["reason"] == "parity"
            ]
            assert len(entries) == 2
            window, cli = sorted(entries, key=lambda e: e["details"]["pid"] != worker.pid)
            assert window["details"] == {"pid": worker.pid, "drill": "zero-on-trip"}
            assert cli["details"] == {"pid": cli_pid, "drill": "zero-on-trip"}
            assert [window[k] for k in COMPARED] == [cli[k] for k in COMPARED]
            assert window["subject"] == full
        finally:
            if cli_pid is not None:
                _stop(cli_pid)
            await panel.stop()
            await session.stop()

    qloop.run_until_complete(scenario())
