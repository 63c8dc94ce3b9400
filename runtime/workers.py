"""Workers as child processes, and starting a worker of a build as one operation.

`WorkerProcess` is one supervised `loyalty-desk worker` child: its own session (a Ctrl-C
in the terminal reaches the app, which stops the worker gracefully) and, on Linux, a
parent-death signal, so even a SIGKILLed app leaves no worker behind. It says it is
ready with one JSON line on stdout; its log is `logs/worker.log` (the app's own) or
`logs/worker-<build id>.log`. If it dies it is restarted with a backoff, and given up on
when it keeps dying (runtime/childproc.py).

`start_worker` (the window's Start button) and `start_detached_worker` (`loyalty-desk
release start`) start a worker of a build beside the others: the same checks, the same
log file and the same audit entry, naming the build id the worker registers (with its
`+drill-<bug>` mark for a drill build).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime import childproc
from runtime.cliutil import connection_argv
from workflows.drill import drill_build_id
from workflows.ids import check_build_id

if TYPE_CHECKING:
    from temporalio.client import Client

    from runtime.connect import Target

log = logging.getLogger(__name__)

WorkerState = childproc.ChildState

READY_TIMEOUT_S = 60.0
REGISTER_TIMEOUT_S = 60.0
STOP_GRACE_S = 8.0  # the worker's own graceful shutdown takes up to 5 s


class WorkerError(childproc.ChildProcessFailed):
    """The worker process did not come up."""


@dataclass(frozen=True)
class WorkerCommand:
    address: str
    namespace: str
    data_dir: Path
    task_queue: str
    deployment: str
    build_id: str | None = None  # None: the worker's default (the package version)
    drill: str | None = None  # a drill build: the build id gets the bug's mark
    make_current_if_none: bool = True  # False for a release beside the current build
    connection: tuple[str, ...] = ()  # TLS / API-key options of an external cluster

    def __post_init__(self) -> None:
        if self.build_id is not None:
            check_build_id(self.build_id)

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "runtime.cli", "worker", "--json"]
        args += connection_argv(
            self.address, self.namespace, self.data_dir, self.task_queue, self.deployment
        )
        if self.build_id:
            args += ["--build-id", self.build_id]
        if self.drill:
            args += ["--drill", self.drill]
        if not self.make_current_if_none:
            args.append("--no-make-current")
        return args + list(self.connection)

    @property
    def full_build_id(self) -> str | None:
        """The build id the worker registers: a drill build's carries its bug's mark."""
        if self.build_id is None:
            return None
        return drill_build_id(self.build_id, self.drill) if self.drill else self.build_id

    @property
    def log_path(self) -> Path:
        if self.build_id is None and self.drill is None:
            return self.data_dir / "logs" / "worker.log"
        # workers of other builds beside the app's own keep their own logs
        label = (self.build_id or "default") + (f"+drill-{self.drill}" if self.drill else "")
        return self.data_dir / "logs" / f"worker-{label}.log"


class WorkerProcess(childproc.Supervised[WorkerState]):
    """One supervised worker child process.

    `on_state_changed` is called with the new state on every change, on the loop.
    """

    def __init__(self, command: WorkerCommand) -> None:
        super().__init__("stopped")
        self.command = command
        self.build_id: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Launch the worker and return once it polls; then supervise it."""
        if self.state not in ("stopped", "failed"):
            raise WorkerError(f"the worker is already {self.state}")
        self.restarts = 0
        self.last_error = None
        self._set_state("starting")
        try:
            await self._launch(timeout)
        except BaseException as error:
            self.last_error = str(error) or type(error).__name__
            await self._kill(grace=0)
            self._set_state("failed" if isinstance(error, Exception) else "stopped")
            raise
        self._set_state("running")
        self._supervisor = asyncio.get_event_loop().create_task(
            self._supervise(), name="worker-supervisor"
        )

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM (the worker finishes its tasks), SIGKILL after `grace` seconds."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await self._kill(grace)
        self._set_state("stopped")

    async def _launch(self, timeout: float) -> None:
        command = self.command
        with childproc.launch_log(command.log_path, command.argv()) as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *command.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=childproc.child_preexec(),
            )
        process = self._process
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(self._read_ready(process.stdout), timeout)
        except TimeoutError:
            raise WorkerError(
                f"the worker did not start polling within {timeout:.0f} s",
                childproc.log_tail(command.log_path),
            ) from None
        self.build_id = str(ready.get("build_id") or "") or None
        log.info("worker pid %s running build %s", process.pid, self.build_id)

    async def _read_ready(self, stdout: asyncio.StreamReader) -> dict[str, Any]:
        while True:
            line = await stdout.readline()
            if not line:
                code = await self._process.wait() if self._process else None
                raise WorkerError(
                    f"the worker exited with code {code} while starting",
                    childproc.log_tail(self.command.log_path),
                )
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("worker") == "running":
                    return message

    async def _supervise(self) -> None:
        deaths = childproc.DeathCount()
        while True:
            process = self._process
            assert process is not None and process.stdout is not None
            # drain stdout so the worker never blocks on a full pipe
            while await process.stdout.read(65536):
                pass
            code = await process.wait()
            self.last_error = f"the worker {childproc.describe_exit(code)} unexpectedly"
            log.warning("%s; log: %s", self.last_error, self.command.log_path)
            launch = lambda: self._launch(READY_TIMEOUT_S)  # noqa: E731
            kill = lambda: self._kill(grace=0)  # noqa: E731
            if not await childproc.relaunch(self, deaths, launch, kill, retry_failed_launch=False):
                return

    async def _kill(self, grace: float) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), grace)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self._process = None


# -- starting a worker of a build: the one operation ---------------------------------


@dataclass(frozen=True)
class WorkerStarted:
    """A worker of a build runs (and the audit log says so)."""

    build: str  # the build id the worker registers (with `+drill-<bug>` for a drill)
    drill: str | None
    pid: int | None
    log_path: Path

    def as_json(self) -> dict[str, Any]:
        return {
            "build": self.build,
            "pid": self.pid,
            "log": str(self.log_path),
            "drill": self.drill,
        }

    def describe(self) -> str:
        return f"Worker for {self.build} running (pid {self.pid})" + (
            f": a DRILL build with the '{self.drill}' bug" if self.drill else ""
        )


def worker_command(
    target: Target, address: str, build: str, drill: str | None, reason: str
) -> WorkerCommand:
    """The worker of `build` (a drill build when `drill` names a bug) beside the current
    one; ValueError with a one-line reason before anything starts."""
    from runtime.connect import tls_args

    build = check_build_id(build.strip())
    if not reason.strip():
        raise ValueError("starting a worker needs a reason")
    return WorkerCommand(
        address=address,
        namespace=target.namespace,
        data_dir=target.data_dir,
        task_queue=target.task_queue,
        deployment=target.deployment,
        build_id=build,
        drill=drill,
        make_current_if_none=False,
        connection=tuple(tls_args(target)),
    )


async def start_worker(
    client: Client, target: Target, worker: WorkerProcess, reason: str
) -> WorkerStarted:
    """Start a supervised worker (it dies with this process) and audit it."""
    await worker.start()
    return await _audited(client, target, worker.command, reason, worker.pid)


async def start_detached_worker(
    client: Client, target: Target, command: WorkerCommand, reason: str
) -> WorkerStarted:
    """Start a worker that outlives this process (the command line's), wait until the
    server knows its build, and audit it; WorkerError when it does not register."""
    from runtime import deployment

    full = command.full_build_id
    assert full is not None, "a worker beside the current one names its build"
    process = _spawn_detached(command)
    try:
        await deployment.wait_registered(
            client, command.deployment, full, timeout=REGISTER_TIMEOUT_S
        )
    except TimeoutError:
        process.kill()
        process.wait()
        raise WorkerError(
            f"the worker for {full} did not register; see {command.log_path}",
            childproc.log_tail(command.log_path),
        ) from None
    return await _audited(client, target, command, reason, process.pid)


def _spawn_detached(command: WorkerCommand) -> subprocess.Popen[bytes]:
    """A worker that outlives us: its own session, no parent-death signal, output to its log."""
    with childproc.launch_log(command.log_path, command.argv()) as log_file:
        return subprocess.Popen(
            command.argv(),
            stdout=log_file,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ.copy(),
        )


async def _audited(
    client: Client, target: Target, command: WorkerCommand, reason: str, pid: int | None
) -> WorkerStarted:
    from runtime.releases import record_release_start

    full = command.full_build_id
    assert full is not None
    await record_release_start(client, target, full, reason=reason, pid=pid, drill=command.drill)
    return WorkerStarted(build=full, drill=command.drill, pid=pid, log_path=command.log_path)
