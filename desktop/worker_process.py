"""The app's worker: `loyalty-desk worker` in a child process that dies with the app.

Workflow code never runs in the GUI process. The child is started in its own session
(a Ctrl-C in the terminal reaches the app, which stops the worker gracefully) and, on
Linux, with a parent-death signal, so even a SIGKILLed app leaves no worker behind.
It says it is ready with one JSON line on stdout; its logs go to `logs/worker.log`.
If it dies, it is restarted with a backoff, and given up on when it keeps dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from workflows.ids import check_build_id

log = logging.getLogger(__name__)

WorkerState = Literal["stopped", "starting", "running", "restarting", "failed"]

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 8.0  # the worker's own graceful shutdown takes up to 5 s
MAX_DEATHS = 5
DEATH_WINDOW_S = 60.0
_PR_SET_PDEATHSIG = 1


class ChildProcessFailed(RuntimeError):
    """A child process of the app failed: `reason` is one line, `log_tail` the end of
    its log (error dialogs show both)."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


class WorkerError(ChildProcessFailed):
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
        args = [
            sys.executable,
            "-m",
            "runtime.cli",
            "worker",
            "--json",
            "--address",
            self.address,
            "--namespace",
            self.namespace,
            "--data-dir",
            str(self.data_dir),
            "--task-queue",
            self.task_queue,
            "--deployment",
            self.deployment,
        ]
        if self.build_id:
            args += ["--build-id", self.build_id]
        if self.drill:
            args += ["--drill", self.drill]
        if not self.make_current_if_none:
            args.append("--no-make-current")
        return args + list(self.connection)

    @property
    def log_path(self) -> Path:
        if self.build_id is None and self.drill is None:
            return self.data_dir / "logs" / "worker.log"
        # workers of other builds beside the app's own keep their own logs
        label = (self.build_id or "default") + (f"+drill-{self.drill}" if self.drill else "")
        return self.data_dir / "logs" / f"worker-{label}.log"


class WorkerProcess:
    """One supervised worker child process.

    `on_state_changed` is called with the new state on every change, on the loop.
    """

    def __init__(self, command: WorkerCommand) -> None:
        self.command = command
        self.on_state_changed: Callable[[WorkerState], None] | None = None
        self.build_id: str | None = None
        self.last_error: str | None = None
        self.restarts = 0
        self._state: WorkerState = "stopped"
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def state(self) -> WorkerState:
        return self._state

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Launch the worker and return once it polls; then supervise it."""
        if self._state not in ("stopped", "failed"):
            raise WorkerError(f"the worker is already {self._state}")
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
        command.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 0600 whatever our umask: the worker's log is the operator's alone
        fd = os.open(command.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log_file:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log_file.write(f"--- {stamp} launching: {' '.join(command.argv())}\n".encode())
            log_file.flush()
            self._process = await asyncio.create_subprocess_exec(
                *command.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=die_with_parent() if sys.platform == "linux" else None,
            )
        process = self._process
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(self._read_ready(process.stdout), timeout)
        except TimeoutError:
            raise WorkerError(
                f"the worker did not start polling within {timeout:.0f} s", self._log_tail()
            ) from None
        self.build_id = str(ready.get("build_id") or "") or None
        log.info("worker pid %s running build %s", process.pid, self.build_id)

    async def _read_ready(self, stdout: asyncio.StreamReader) -> dict[str, Any]:
        while True:
            line = await stdout.readline()
            if not line:
                code = await self._process.wait() if self._process else None
                raise WorkerError(
                    f"the worker exited with code {code} while starting", self._log_tail()
                )
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("worker") == "running":
                    return message

    async def _supervise(self) -> None:
        deaths: deque[float] = deque()
        while True:
            process = self._process
            assert process is not None and process.stdout is not None
            # drain stdout so the worker never blocks on a full pipe
            while await process.stdout.read(65536):
                pass
            code = await process.wait()
            self.last_error = f"the worker exited unexpectedly with code {code}"
            log.warning("%s; log: %s", self.last_error, self.command.log_path)
            now = time.monotonic()
            deaths.append(now)
            while deaths[0] < now - DEATH_WINDOW_S:
                deaths.popleft()
            if len(deaths) >= MAX_DEATHS:
                self._set_state("failed")
                return
            self._set_state("restarting")
            await asyncio.sleep(0.5 * 2 ** (len(deaths) - 1))
            try:
                await self._launch(READY_TIMEOUT_S)
            except WorkerError as error:
                self.last_error = error.reason
                await self._kill(grace=0)
                self._set_state("failed")
                return
            self.restarts += 1
            self._set_state("running")

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

    def _set_state(self, state: WorkerState) -> None:
        if state == self._state:
            return
        self._state = state
        if self.on_state_changed is not None:
            try:
                self.on_state_changed(state)
            except Exception:
                log.exception("on_state_changed callback failed")

    def _log_tail(self, max_bytes: int = 4000) -> str:
        try:
            with self.command.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGKILL the child when the forking thread ends.

    We fork from the GUI thread, which lives as long as the app. Everything is looked
    up before the fork so the child does as little as possible before exec.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()
    sigkill = int(signal.SIGKILL)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill)
        if os.getppid() != parent_pid:  # the parent died before prctl: no signal would come
            os._exit(1)

    return set_parent_death_signal
