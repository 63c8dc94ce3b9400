"""Running `loyalty-desk` (python -m runtime.cli) against a test deployment, as a person
would from a shell: a process of its own, its exit code, stdout and stderr."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import Deployment


async def cli(
    deployment: Deployment | None,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    options = []
    if deployment is not None:
        t = deployment.target
        options = [
            "--address",
            deployment.address,
            "--task-queue",
            t.task_queue,
            "--deployment",
            t.deployment,
            "--data-dir",
            str(t.data_dir),
        ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime.cli",
        *args,
        *options,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
