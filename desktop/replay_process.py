"""The replay check in a child process: `loyalty-desk replay-check --json`.

Replaying histories is processor work (the SDK's Replayer runs the workflow code in
its sandbox, member after member): inside the app it held the GUI thread for seconds.
The child is the command line's own check, run with the app's interpreter and code,
so it judges the code installed here exactly as `loyalty-desk replay-check` does; it
prints its report as one JSON object. Like the worker, it runs in its own session and
dies with the app; cancelling the coroutine kills it (the check only reads).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.childproc import ChildProcessFailed, child_preexec
from runtime.cliutil import connection_argv

# exit codes of `replay-check`: 0 GO, 1 NO-GO (or a failure, which says so in its JSON)
REPORT_CODES = (0, 1)
MEMBERS_LIMIT = 1000  # as the command line's default
MAX_REPORT_BYTES = 64 * 2**20
REPORT_KEYS = frozenset(
    ("candidate", "go", "members", "nondeterministic", "state_differs", "unchecked", "results")
)


class ReplayCheckError(ChildProcessFailed):
    """The check gave no report (`log_tail`: the end of its stderr)."""


@dataclass(frozen=True)
class ReplayCommand:
    """Where the members live (the app's own target) and which build to judge."""

    address: str
    namespace: str
    data_dir: Path
    task_queue: str
    deployment: str
    candidate: str | None = None  # None: the code installed here
    limit: int = MEMBERS_LIMIT  # members checked at most (the report is one JSON line)
    connection: tuple[str, ...] = ()  # TLS / API-key options of an external cluster

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "runtime.cli", "replay-check", "--progress"]
        if self.candidate:
            args.append(self.candidate)
        return [
            *args,
            "--json",
            "--limit",
            str(self.limit),
            *connection_argv(
                self.address, self.namespace, self.data_dir, self.task_queue, self.deployment
            ),
            *self.connection,
        ]


async def run_replay_check(
    command: ReplayCommand,
    *,
    on_started: Callable[[int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The report of `replay-check --json` (as `ReplayReport.as_json()`), GO or NO-GO.

    `on_started(pid)` is called once the child runs, `on_progress(done, total)` as it
    checks members. Raises ReplayCheckError when the child fails or prints no report;
    cancelled, it kills the child first.
    """
    process = await asyncio.create_subprocess_exec(
        *command.argv(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=MAX_REPORT_BYTES,  # the report is one line
        start_new_session=True,  # a Ctrl-C in the terminal reaches the app only
        preexec_fn=child_preexec(),
    )
    if on_started is not None:
        on_started(process.pid)
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.ensure_future(process.stderr.read())
    try:
        last = b""
        async for line in process.stdout:
            progress = _progress(line)
            if progress is None:
                last = line if line.strip() else last
            elif on_progress is not None:
                on_progress(*progress)
        err = await errors
        code = await process.wait()
    except ValueError:  # asyncio's reader refuses a line beyond its limit
        await _stop(process, errors)
        raise ReplayCheckError(
            f"The replay check's report is larger than {MAX_REPORT_BYTES // 2**20} MiB"
        ) from None
    except BaseException:
        await _stop(process, errors)
        raise
    return parse_report(code, last, err)


async def _stop(process: asyncio.subprocess.Process, errors: asyncio.Future[bytes]) -> None:
    errors.cancel()
    if process.returncode is None:
        process.kill()
    await asyncio.shield(process.wait())


def _progress(line: bytes) -> tuple[int, int] | None:
    if not line.startswith(b'{"checked"'):
        return None
    try:
        data = json.loads(line)
        return int(data["checked"]), int(data["of"])
    except (ValueError, KeyError, TypeError):
        return None


def parse_report(code: int, out: bytes, err: bytes) -> dict[str, Any]:
    """The report from the child's stdout, or ReplayCheckError with the reason."""
    tail = err.decode(errors="replace").strip()[-4000:]
    lines = out.decode(errors="replace").strip().splitlines()
    data: Any = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except ValueError:
            data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise ReplayCheckError(f"The replay check failed: {data['error']}", tail)
    if code not in REPORT_CODES:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        last = tail.splitlines()[-1] if tail else "no message"
        raise ReplayCheckError(f"The replay check {how}: {last}", tail)
    if not (isinstance(data, dict) and REPORT_KEYS <= data.keys()):
        shown = (lines[-1][:120] if lines else "nothing") or "an empty line"
        raise ReplayCheckError(f"The replay check printed no report (its output: {shown})", tail)
    if not isinstance(data["results"], list):
        raise ReplayCheckError("The replay check's report has no list of members", tail)
    return data


__all__ = ["ReplayCheckError", "ReplayCommand", "parse_report", "run_replay_check"]
