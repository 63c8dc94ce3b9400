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
    stdin: str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """`loyalty-desk ARGS` aimed at the deployment (its options as every child of the
    app gets them: runtime.cliutil.target_argv); stdin as text or raw bytes."""
    from runtime.cliutil import target_argv

    options = [] if deployment is None else target_argv(deployment.target, deployment.address)
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
    data = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = await proc.communicate(data)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def temporal_signal_event(address: str, member: str, event: dict) -> None:  # type: ignore[type-arg]
    """Send one event to a member with Temporal's own CLI (`temporal workflow signal`),
    as any client of the public contract could."""
    import json

    from tests.conftest import temporal_binary
    from workflows.contract import SIGNAL_EVENT, member_workflow_id

    proc = await asyncio.create_subprocess_exec(
        temporal_binary(),
        "workflow",
        "signal",
        "--address",
        address,
        "--workflow-id",
        member_workflow_id(member),
        "--name",
        SIGNAL_EVENT,
        "--input",
        json.dumps(event),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
