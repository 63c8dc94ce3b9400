"""The app's worker child process, as the window's panels and session use it.

The supervisor lives in runtime/workers.py (Qt-free, shared with the command line);
this module keeps the names the desktop side has always imported.
"""

from __future__ import annotations

from runtime.childproc import ChildProcessFailed, die_with_parent
from runtime.workers import (
    READY_TIMEOUT_S,
    STOP_GRACE_S,
    WorkerCommand,
    WorkerError,
    WorkerProcess,
    WorkerState,
)

__all__ = [
    "READY_TIMEOUT_S",
    "STOP_GRACE_S",
    "ChildProcessFailed",
    "WorkerCommand",
    "WorkerError",
    "WorkerProcess",
    "WorkerState",
    "die_with_parent",
]
