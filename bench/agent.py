"""The agent at scale, through the CLI on the embedded server (issue 4's "done when").

Starts `loyalty-desk server` and `loyalty-desk worker` on a fresh data dir, feeds
simulated traffic (`feed --simulate N --members M --wait`), waits until every member's
agent is idle, then approves by policy from the CLI and checks that every approved
proposal was applied exactly once (one goodwill ledger entry per approved grant, one
effect per approved message). The same feed runs again with the agent disabled,
for the agent's overhead.

    python -m bench.agent [--events 10000] [--members 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.common import emit, machine
from runtime.server import find_running_server
from workflows.member import MemberWorkflow, member_workflow_id


async def spawn(data_dir: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime.cli",
        *args,
        "--data-dir",
        str(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_DESK_")},
    )


async def run(data_dir: Path, *args: str) -> Any:
    proc = await spawn(data_dir, *args, "--json")
    out, _ = await proc.communicate()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{args} exited {proc.returncode}")
    return json.loads(out)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


async def gather_limited(items: list[Any], work: Any, limit: int = 64) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(item: Any) -> Any:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


async def agents_idle(client: Client, members: list[str], timeout: float = 600) -> float:
    """Seconds until no member has an agent run queued or running."""
    started = time.perf_counter()

    async def busy(member: str) -> bool:
        handle = client.get_workflow_handle(member_workflow_id(member))
        agent = (await handle.query(MemberWorkflow.agent))["agent"]
        return bool(agent["queued"] or agent["running"])

    while time.perf_counter() - started < timeout:
        running = await client.count_workflows(
            "WorkflowType = 'AgentTurnWorkflow' AND ExecutionStatus = 'Running'"
        )
        if running.count == 0 and not any(await gather_limited(members, busy)):
            return time.perf_counter() - started
        await asyncio.sleep(1)
    raise TimeoutError("agents still busy")


async def scenario(args: argparse.Namespace, data_dir: Path, *, agent: bool) -> dict[str, Any]:
    server = await spawn(data_dir, "server", "--headless")
    worker = None
    try:
        for _ in range(300):
            info = find_running_server(data_dir)
            if info:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        worker = await spawn(data_dir, "worker")
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 60)
        assert b"worker for build" in line, line
        client = await Client.connect(info["address"])
        if not agent:  # the deployment's guardrails (a worker's settings.json can't)
            off = await run(
                data_dir, "guardrails", "set", "enabled=false", "--reason", "bench: agent off"
            )
            assert off["policy"]["enabled"] is False, off
        started = time.perf_counter()
        fed = await run(
            data_dir,
            "feed",
            "--simulate",
            str(args.events),
            "--members",
            str(args.members),
            "--seed",
            str(args.seed),
            "--wait",
        )
        feed_s = time.perf_counter() - started
        members = [f"sim-{i:05d}" for i in range(args.members)]
        idle_s = await agents_idle(client, members)
        result: dict[str, Any] = {
            "events": args.events,
            "members": args.members,
            "feed_wait_s": round(feed_s, 2),
            "agents_idle_after_feed_s": round(idle_s, 2),
            "events_processed": fed["applied"]["events_processed"],
        }

        async def history_length(member: str) -> int:
            return (
                await client.get_workflow_handle(member_workflow_id(member)).describe()
            ).raw_description.workflow_execution_info.history_length

        result["member_history_events"] = sum(await gather_limited(members, history_length))
        runs = await client.count_workflows("WorkflowType = 'AgentTurnWorkflow'")
        result["agent_runs"] = runs.count
        if not agent:
            return result

        costs = await run(data_dir, "costs")
        durations = []
        async for wf in client.list_workflows("WorkflowType = 'AgentTurnWorkflow'"):
            if wf.close_time and wf.start_time:
                durations.append((wf.close_time - wf.start_time).total_seconds())
        pending = await run(data_dir, "approvals", "list")
        result.update(
            triggers=len(durations),
            model_calls=costs["totals"]["model_calls"],
            tokens=costs["totals"]["tokens"],
            model_calls_per_1000_events=round(
                costs["totals"]["model_calls"] * 1000 / args.events, 1
            ),
            agent_run_s_p50=round(statistics.median(durations), 3) if durations else None,
            agent_run_s_p95=round(sorted(durations)[int(len(durations) * 0.95)], 3)
            if durations
            else None,
            proposals_pending=len(pending),
            proposals_by_action=dict(Counter(p["action"] for p in pending)),
        )
        t0 = time.perf_counter()
        messages = await run(
            data_dir,
            "approvals",
            "decide",
            "--policy",
            "action=message_member",
            "--approve",
            "--reason",
            "bench: standard replies",
        )
        grants = await run(
            data_dir,
            "approvals",
            "decide",
            "--policy",
            "action=grant_points,max_points=500",
            "--approve",
            "--reason",
            "bench: small goodwill",
        )
        result["bulk_decide_s"] = round(time.perf_counter() - t0, 2)
        result["approved_messages"] = messages["decided"]
        result["approved_grants"] = grants["decided"]
        result["decide_failures"] = len(messages["failed"]) + len(grants["failed"])

        # exactly once: one goodwill entry per approved grant, one effect per message
        approved = {r["proposal_id"] for r in grants["results"]}
        owners = sorted({pid.split(":", 1)[0] for pid in approved})

        async def goodwill(member: str) -> list[str]:
            state = await client.get_workflow_handle(member_workflow_id(member)).query(
                MemberWorkflow.state
            )
            return [e["cause"] for e in state["ledger"] if e["kind"] == "goodwill"]

        causes = Counter(c for group in await gather_limited(owners, goodwill) for c in group)
        result["grants_applied_once"] = (
            all(causes[p] == 1 for p in approved) and set(causes) == approved
        )
        wanted = {r["proposal_id"] for r in messages["results"]}
        # one EffectWorkflow per approved message (they wait undelivered: no destination)
        for _ in range(120):
            listed = await run(data_dir, "effects", "list", "--limit", str(2 * len(wanted) + 10))
            per_proposal = Counter(r["proposal_id"] for r in listed["effects"])
            if set(per_proposal) >= wanted:
                break
            await asyncio.sleep(0.5)
        result["effects"] = sum(per_proposal.values())
        result["one_effect_per_approved_message"] = set(per_proposal) == wanted and all(
            n == 1 for n in per_proposal.values()
        )
        return result
    finally:
        if worker is not None:
            await stop(worker)
        await stop(server)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "agent", "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="ld-agent-") as tmp:
        with_agent = await scenario(args, Path(tmp) / "agent", agent=True)
        without = await scenario(args, Path(tmp) / "no-agent", agent=False)
    result["with_agent"] = with_agent
    result["agent_disabled"] = without
    triggers = with_agent["triggers"] or 1
    result["member_history_events_per_trigger"] = round(
        (with_agent["member_history_events"] - without["member_history_events"]) / triggers, 1
    )
    result["feed_wait_s_agent_vs_disabled"] = [with_agent["feed_wait_s"], without["feed_wait_s"]]
    result["extra_wall_s_per_trigger"] = round(
        (
            with_agent["feed_wait_s"]
            + with_agent["agents_idle_after_feed_s"]
            - without["feed_wait_s"]
        )
        / triggers,
        4,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
