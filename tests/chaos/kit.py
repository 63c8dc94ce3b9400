"""Helpers for the chaos tests: `loyalty-desk` processes to start and kill, and the
checks that every member equals the rules applied to what was fed to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.enums.v1 import WorkflowTaskFailedCause as EnumCause
from temporalio.client import Client

from runtime.feed import wait_applied
from tests.memberkit import COMPARED
from workflows.member import member_workflow_id
from workflows.rules import replay

# duplicates_ignored is left out: a signal redelivered by a retried RPC (server killed
# mid-call) is a duplicate the rules never saw, and ignoring it is the point
SAME_AS_RULES = tuple(field for field in COMPARED if field != "duplicates_ignored")
WORKER_READY = b"worker for build"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without the operator's LOYALTY_DESK_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_DESK_")}
    return {**env, **(extra or {})}


async def spawn(
    *args: str, env: dict[str, str] | None = None, stdin: bool = False, log: Path | None = None
) -> asyncio.subprocess.Process:
    """A `loyalty-desk` process; a long-running one logs to `log`, since a pipe nobody
    reads fills up and then blocks it."""
    with contextlib.ExitStack() as files:
        stderr: Any = subprocess.PIPE
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            stderr = files.enter_context(log.open("ab"))
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime.cli",
            *args,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=clean_env(env),
        )


async def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    """Run a `--json` command to completion; its parsed output (it must succeed)."""
    proc = await spawn(*args, "--json", env=env, stdin=stdin is not None)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


async def start_worker(
    *args: str, log: Path, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """A `loyalty-desk worker` process, returned once it polls; its stderr goes to `log`."""
    proc = await spawn("worker", *args, env=env, log=log)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 90)
    if WORKER_READY not in line:
        await proc.wait()
        raise AssertionError((await asyncio.to_thread(log.read_bytes)).decode()[-2000:])
    return proc


async def sigkill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            await sigkill(proc)


async def stop_all(procs: Sequence[asyncio.subprocess.Process]) -> None:
    """`stop` each, all at once: a worker's graceful shutdown takes a few seconds."""
    await asyncio.gather(*(stop(proc) for proc in procs))


def worker_identity(proc: asyncio.subprocess.Process) -> str:
    """The SDK's default identity for a worker process: pid@host."""
    return f"{proc.pid}@{os.uname().nodename}"


def by_member(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["member_id"], []).append(event)
    return grouped


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rules_state(member: str, events: list[Any]) -> dict[str, Any]:
    """replay() of the events as received now: events a year ahead are refused."""
    now = datetime.now(UTC)
    return replay(member, events, received_at=[now] * len(events)).summary()


def _ledger(state: dict[str, Any]) -> tuple[int, list[tuple[str, int]]]:
    return state["ledger_base"], [(e["cause"], e["delta"]) for e in state["ledger"]]


async def assert_members_match_rules(
    client: Client, fed: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Every member's state and ledger equal replay() of its events: none lost, none twice."""
    states = await wait_applied(client, fed, concurrency=16)
    wrong = []
    for member, events in fed.items():
        truth = rules_state(member, events)
        state = states[member]
        if {k: state[k] for k in SAME_AS_RULES} != {k: truth[k] for k in SAME_AS_RULES}:
            wrong.append((member, {k: (state[k], truth[k]) for k in SAME_AS_RULES}))
        elif _ledger(state) != _ledger(truth):
            wrong.append((member, "ledger differs"))
    assert not wrong, f"{len(wrong)} members differ from the rules, e.g. {wrong[:3]}"
    return states


async def failed_tasks(client: Client, members: Sequence[str]) -> list[str]:
    """Members with a WorkflowTaskFailed in any run (a workflow the input broke), each
    as "member: the first failure's message"."""
    failed = []
    for member in members:
        wid = member_workflow_id(member)
        async for execution in client.list_workflows(f"WorkflowId = '{wid}'"):
            history = await client.get_workflow_handle(wid, run_id=execution.run_id).fetch_history()
            causes = [
                e.workflow_task_failed_event_attributes
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
            # not failures of the workflow: a reset's own failed task, the server
            # flushing signals it buffered while a task was in flight (past 2 MB or 100
            # signals it fails that task, and the next one takes them all), and its
            # answer to a continue-as-new racing new signals (the next task takes them)
            causes = [
                c
                for c in causes
                if not c.new_run_id
                and c.cause != EnumCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
                and not (
                    c.cause == EnumCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND
                    and c.identity == "history-service"
                )
            ]
            if causes:
                cause = causes[0]
                why = (cause.failure.message or "").strip()[:300]
                failed.append(f"{member}: {EnumCause.Name(cause.cause)} {why}")
                break
    return failed
