"""Helpers for tests that run the app headless as a child process: spawn it, wait for a
line of its output, stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


async def spawn(
    *args: str,
    data_dir: Path,
    stdin: bool = False,
    capture: bool = False,
    env: Mapping[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """A CLI process, without the caller's LOYALTY_DESK_* settings (plus `env`). Servers
    and workers run on: their stderr goes to a log file beside the data dir, since nobody
    drains it and a full pipe would block them, unless `capture` (the test reads it all)."""
    log = None
    if args[0] in ("server", "worker") and not capture:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        path = data_dir.parent / f"{args[0]}.log"
        log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime.cli",
            *args,
            "--data-dir",
            str(data_dir),
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if log is None else log,
            env={k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_DESK_")}
            | dict(env or {}),
        )
    finally:
        if log is not None:
            os.close(log)  # the child holds its own copy


async def run(*args: str, data_dir: Path) -> str:
    proc = await spawn(*args, data_dir=data_dir)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
