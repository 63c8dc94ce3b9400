"""What every child process of the app shares: the server, the worker, the replay check.

One error type (a one-line reason and the end of the child's log), the parent-death
preexec (on Linux a child dies with us, so a SIGKILLed app leaves nothing behind), the
state a supervised child is in and who hears of its changes, its log file (0600, one
"launching" line per start) and the end of it, and the restart policy (a backoff, and
giving up on a child that keeps dying). Qt-free and asyncio-only: the window's panels
and the command line use the same pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Generic, Literal, TypeVar

log = logging.getLogger(__name__)

ChildState = Literal["stopped", "starting", "running", "restarting", "failed"]
State = TypeVar("State", bound=str)

# A crash loop gives up after this many deaths within the window.
MAX_DEATHS = 5
DEATH_WINDOW_S = 60.0
LOG_TAIL_BYTES = 4000
_PR_SET_PDEATHSIG = 1


class ChildProcessFailed(RuntimeError):
    """A child process of the app failed: `reason` is one line (what the CLI prints and
    the window's status shows), `log_tail` the end of its log (error dialogs show both)."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGKILL the child when the forking thread ends.

    We fork from the main (GUI) thread, which lives as long as the app. Everything is
    looked up before the fork so the child does as little as possible before exec.
    """
    import ctypes  # POSIX only; imported where it is used, so the app imports anywhere

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()
    sigkill = int(signal.SIGKILL)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill)
        if os.getppid() != parent_pid:  # the parent died before prctl: no signal would come
            os._exit(1)

    return set_parent_death_signal


def child_preexec(*, private_files: bool = False) -> Callable[[], None] | None:
    """The preexec_fn of every child: dies with us (Linux), and with `private_files`
    creates its files 0600 whatever our umask. None where there is no such thing."""
    if sys.platform != "linux":
        return None
    die = die_with_parent()
    if not private_files:
        return die

    def prepare() -> None:
        os.umask(0o077)
        die()

    return prepare


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@contextlib.contextmanager
def open_private(path: Path, flag: int) -> Iterator[BinaryIO]:
    """Open `path` for writing, created 0600 whatever the process's umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flag, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f


@contextlib.contextmanager
def launch_log(path: Path, argv: Sequence[str]) -> Iterator[BinaryIO]:
    """The child's log, opened for appending (0600) with one line saying what starts."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open_private(path, os.O_APPEND) as log_file:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log_file.write(f"--- {stamp} launching: {' '.join(argv)}\n".encode())
        log_file.flush()
        yield log_file


def log_tail(path: Path, max_bytes: int = LOG_TAIL_BYTES) -> str:
    """The end of a child's log, or "" when there is none."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal a child started in a session of its own, and what it started."""
    # Only while unreaped: the group id is the leader's pid, which is then not reusable.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


class DeathCount:
    """The restart policy: each death is counted; a child that died MAX_DEATHS times
    within DEATH_WINDOW_S is given up on, else restarted after a growing backoff."""

    def __init__(self) -> None:
        self._deaths: deque[float] = deque()

    def died(self) -> float | None:
        """Count a death: the seconds to wait before the restart, or None to give up."""
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths[0] < now - DEATH_WINDOW_S:
            self._deaths.popleft()
        if len(self._deaths) >= MAX_DEATHS:
            return None
        return 0.5 * 2 ** (len(self._deaths) - 1)


class Supervised(Generic[State]):
    """The state of a supervised child; `on_state_changed` hears every change (on the
    event loop's thread), and a broken listener never stops the supervision."""

    def __init__(self, initial: State) -> None:
        self._state: State = initial
        self.on_state_changed: Callable[[State], None] | None = None
        self.restarts = 0  # relaunches after the child died
        self.last_error: str | None = None

    @property
    def state(self) -> State:
        return self._state

    def _set_state(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        if self.on_state_changed is not None:
            try:
                self.on_state_changed(state)
            except Exception:
                log.exception("on_state_changed callback failed")


async def relaunch(
    child: Supervised[Any],
    deaths: DeathCount,
    launch: Callable[[], Awaitable[None]],
    kill: Callable[[], Awaitable[None]],
    *,
    retry_failed_launch: bool,
) -> bool:
    """The restart loop, after a supervised child died: count the death, back off, launch
    it again. False (the child is "failed") once it keeps dying, or when a relaunch fails
    and `retry_failed_launch` is off; a failed relaunch's reason goes to `last_error`."""
    while True:
        delay = deaths.died()
        if delay is None:
            child._set_state("failed")
            return False
        child._set_state("restarting")
        await asyncio.sleep(delay)
        child.restarts += 1
        try:
            await launch()
        except ChildProcessFailed as error:
            child.last_error = error.reason
            await kill()
            if retry_failed_launch:
                continue
            child._set_state("failed")
            return False
        child._set_state("running")
        return True
