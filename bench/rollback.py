"""Rollback: repairing members damaged by a drill build, Loyalty Desk versus the CLI.

Two namespaces on one embedded server get identical data: members fed under a good
build, a drill build (zero-on-trip) and the fixed build. In one, Loyalty Desk previews,
executes (RollbackWorkflow) and verifies; in the other, the Temporal CLI's own batch
reset by build id runs (no preview, no verification, no re-delivery), timed until the
batch job finishes.

    python -m bench.rollback [--members 1000] [--events 6]

Prints one JSON object. The desk runs as `rollback --execute` does: a durable preview
(PreviewWorkflow, pages of `--page-size`) and a paged RollbackWorkflow acting on its
pages as they come, every member verified, then a scan for members still damaged.
`desk_rollback_s` is all of that; `preview_s` the preview workflow on its own (it
overlaps the resets); `workflow_s` the rollback's states (planning = waiting for the
first page, running = resets each verified right after, verifying = the last scan).
`cli_batch_reset_s` times the Temporal CLI's batch reset until its job ends,
`cli_all_correct_s` until every member's state equals what the rules compute (the
preview's `after`) and none runs the bad build: `desk_vs_cli` and
`desk_vs_cli_correct` are the desk's time over those. `per_member_ms` is the desk's
time per affected member (compare it across `--members`).

`--cli-first` times the CLI before the desk, on the fresh server, and holds its members
to what the rules compute from the events they were fed (`truth_vs_preview_mismatches`
then says whether that equals the desk's preview); `--server-ops` adds what the server
did per member on each side (persistence requests, frontend calls).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from bench import server_ops
from bench.common import Bench, embedded, emit, machine, start_worker
from recovery import pages
from recovery.damage import current_build
from recovery.plan import fields_of
from runtime import deployment as releases
from runtime import previews
from runtime.feed import wait_applied
from runtime.server import find_temporal_binary
from runtime.server_files import free_port
from workflows.contract import QUERY_STATE
from workflows.drill import drill_build_id
from workflows.ids import member_workflow_id
from workflows.member import MemberInput
from workflows.rollback import RollbackInput, RollbackWorkflow
from workflows.rules import replay
from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

BUG = "zero-on-trip"
BAD = drill_build_id("1.1", BUG)
CLI_NAMESPACE = "cli-copy"


def phase_events(member: str, phase: str, count: int, day: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "trip_completed",
            "event_id": f"{member}-{phase}-{n}",
            "member_id": member,
            "occurred_at": f"2026-05-{day:02d}T{8 + n:02d}:00:00Z",
            "fare_cents": 1_200 + 37 * n,
        }
        for n in range(count)
    ]


async def feed_phase(
    client: Client, bench: Bench, members: list[str], phase: str, count: int, day: int
) -> None:
    gate = asyncio.Semaphore(64)

    async def one(member: str) -> None:
        async with gate:
            await client.start_workflow(
                "MemberWorkflow",
                MemberInput(member_id=member),
                id=member_workflow_id(member),
                task_queue=bench.task_queue,
                start_signal="events",
                start_signal_args=[phase_events(member, phase, count, day)],
            )

    await asyncio.gather(*(one(m) for m in members))
    await wait_applied(client, members)


async def add_namespace(bench: Bench) -> Client:
    await bench.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=CLI_NAMESPACE,
            workflow_execution_retention_period=Duration(seconds=30 * 86400),
        )
    )
    types = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    }
    for _ in range(50):
        try:
            await bench.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=CLI_NAMESPACE,
                    search_attributes={k: types[v] for k, v in SEARCH_ATTRIBUTE_TYPES.items()},
                )
            )
            break
        except Exception:  # the namespace takes a moment to be usable
            await asyncio.sleep(0.2)
    return await Client.connect(bench.server.address, namespace=CLI_NAMESPACE)


async def damage(
    client: Client,
    bench: Bench,
    namespace: str,
    members: list[str],
    events: int,
    fixed_workers: int = 1,
) -> list[asyncio.subprocess.Process]:
    """Feed the three phases; `fixed_workers` worker processes run the fixed build (they
    run the members again after the resets, and the desk's preview and rollback)."""
    workers = [await start_worker(bench, "1.0", namespace=namespace)]
    await feed_phase(client, bench, members, "a", events, 1)
    workers.append(await start_worker(bench, "1.1", namespace=namespace, drill=BUG))
    await releases.set_current(client, bench.deployment, BAD)
    await feed_phase(client, bench, members, "b", events, 3)
    for _ in range(fixed_workers):
        workers.append(await start_worker(bench, "1.2", namespace=namespace))
    await releases.set_current(client, bench.deployment, "1.2")
    await feed_phase(client, bench, members, "c", events, 5)
    return workers


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "rollback",
        "machine": machine(),
        "members": args.members,
        "workers": args.workers,
        "bad_build": BAD,
    }
    members = [f"rb-{i:05d}" for i in range(args.members)]
    metrics = free_port() if args.server_ops else None
    # the server's metrics port is on 127.0.0.1: no private network with --server-ops
    private = False if metrics else None
    async with embedded(worker=False, private_network=private, metrics_port=metrics) as bench:
        cli_client = None if args.no_cli else await add_namespace(bench)
        workers = await damage(bench.client, bench, "default", members, args.events, args.workers)
        if cli_client is not None:
            workers += await damage(
                cli_client, bench, CLI_NAMESPACE, members, args.events, args.workers
            )
        try:
            cli: dict[str, Any] = {}
            if cli_client is not None and args.cli_first:
                # the CLI on the fresh server; its members are right when they hold what
                # the rules compute from everything they were sent
                cli = await cli_batch(bench, cli_client, members, truth(members, args), args)
            # Loyalty Desk: the durable preview and the paged rollback acting on its
            # pages as they come (as `rollback --execute` runs them), verified
            ops_before = await server_ops.counters(metrics) if metrics else None
            started = time.perf_counter()
            preview_id = await previews.start_preview(
                bench.client, bench.task_queue, BAD, page_size=args.page_size
            )
            handle = await bench.client.start_workflow(
                RollbackWorkflow.run,
                RollbackInput(
                    bad_build=BAD,
                    reason="bench",
                    actor="bench",
                    rate_per_second=args.rate,
                    concurrency=args.concurrency,
                    preview_id=preview_id,
                ),
                id="rollback-bench",
                task_queue=bench.task_queue,
            )
            progress = await handle.result()
            desk_s = time.perf_counter() - started
            if metrics and ops_before is not None:
                result["desk_server_ops"] = server_ops.summary(
                    ops_before, await server_ops.counters(metrics), {"default"}, args.members
                )
            preview = await pages.preview_state(bench.client, preview_id)
            assert preview is not None
            preview_s = previews.seconds_of(preview)
            after: dict[str, dict[str, Any]] = {}
            for k in range(preview.pages):
                page = await pages.read_page(bench.client, preview_id, k)
                after.update({r["member_id"]: r["after"] for r in page.rows} if page else {})
            if cli_client is not None and not args.cli_first:  # batch reset by build id
                cli = await cli_batch(bench, cli_client, members, after, args)
            if cli:
                result.update(cli)
                result.update(
                    desk_vs_cli=round(desk_s / cli["cli_batch_reset_s"], 3),
                    desk_vs_cli_until_members_run=round(desk_s / cli["cli_until_members_run_s"], 3),
                    desk_vs_cli_correct=round(desk_s / cli["cli_all_correct_s"], 3),
                )
            if args.cli_first:  # the rules' truth the CLI was held to, against the preview
                expected = truth(members, args)
                result["truth_vs_preview_mismatches"] = sum(
                    1 for m in after if fields_of(after[m]) != fields_of(expected[m])
                )
        finally:
            for worker in workers:
                worker.terminate()
                await worker.wait()
    affected = progress.total
    result.update(
        affected=affected,
        # the preview workflow, start to finish (the resets overlap it)
        preview_s=round(preview_s, 2),
        pages=progress.pages,
        # inside RollbackWorkflow: planning = waiting for the first page, running =
        # resets (each member verified right after its reset), verifying = the scan for
        # members still damaged after the last page
        workflow_s=progress.seconds,
        desk_rollback_s=round(desk_s, 2),
        per_member_ms=round(1000 * desk_s / max(1, affected), 2),
        mismatches=progress.mismatch_count,
        verified_ok=progress.verified_ok,
        still_damaged=(progress.after_preview or {}).get("affected"),
    )
    return result


async def cli_batch(
    bench: Bench,
    cli_client: Client,
    members: list[str],
    after: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The Temporal CLI's batch reset of the same damage, on the copy namespace."""
    metrics = bench.server.config.metrics_port
    ops_before = await server_ops.counters(metrics) if metrics else None
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(find_temporal_binary()),
        "workflow",
        "reset",
        "--address",
        bench.server.address,
        "--namespace",
        CLI_NAMESPACE,
        "--query",
        "WorkflowType='MemberWorkflow' AND ExecutionStatus='Running'",
        "--type",
        "BuildId",
        "--build-id",
        BAD,
        "--yes",
        "--reason",
        "bench",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"temporal workflow reset failed: {err.decode()[:300]}")
    job = await wait_batch(cli_client)
    cli_s = time.perf_counter() - started
    # the batch job is done when the server has reset every member; the members
    # run again (their workers replayed the new runs) a while later
    cli_states = await wait_applied(cli_client, members)
    cli_run_s = time.perf_counter() - started
    wrong_after_cli = sum(1 for m in members if cli_states[m]["points"] != after[m]["points"])
    never_correct = await wait_correct(cli_client, after, args.correct_timeout)
    cli_correct_s = time.perf_counter() - started
    ops: dict[str, Any] = {}
    if metrics and ops_before is not None:
        after_ops = await server_ops.counters(metrics)
        ops["cli_server_ops"] = server_ops.summary(
            ops_before, after_ops, {CLI_NAMESPACE}, len(members)
        )
    return {
        **ops,
        "cli_batch_reset_s": round(cli_s, 2),
        "cli_until_members_run_s": round(cli_run_s, 2),
        "cli_all_correct_s": round(cli_correct_s, 2),
        "cli_members_never_correct": never_correct,
        "cli_per_member_ms": round(1000 * cli_correct_s / max(1, len(members)), 2),
        "cli_batch_job": job,
        "cli_members_not_equal_to_preview": wrong_after_cli,
    }


def truth(members: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """What the rules compute for each member from the three phases it was fed."""
    fed = {
        m: [
            *phase_events(m, "a", args.events, 1),
            *phase_events(m, "b", args.events, 3),
            *phase_events(m, "c", args.events, 5),
        ]
        for m in members
    }
    return {m: replay(m, events).summary() for m, events in fed.items()}


async def wait_correct(client: Client, after: dict[str, dict[str, Any]], timeout: float) -> int:
    """Wait until every member's state equals the preview's `after` (what the rules
    compute) and no member runs the bad build; how many never got there in `timeout`."""
    gate = asyncio.Semaphore(64)

    async def correct(member: str) -> bool:
        async with gate:
            handle = client.get_workflow_handle(member_workflow_id(member))
            state = await handle.query(QUERY_STATE)
            if fields_of(state) != fields_of(after[member]):
                return False
            return current_build(await handle.describe()) != BAD

    waiting = list(after)
    deadline = time.perf_counter() + timeout
    while waiting and time.perf_counter() < deadline:
        done = await asyncio.gather(*(correct(m) for m in waiting))
        waiting = [m for m, ok in zip(waiting, done, strict=True) if not ok]
        if waiting:
            await asyncio.sleep(0.5)
    return len(waiting)


async def wait_batch(client: Client) -> dict[str, Any]:
    """Wait for the namespace's batch operation to finish; the CLI returns when it starts."""
    from temporalio.api.enums.v1 import BatchOperationState
    from temporalio.api.workflowservice.v1 import (
        DescribeBatchOperationRequest,
        ListBatchOperationsRequest,
    )

    while True:
        listing = await client.workflow_service.list_batch_operations(
            ListBatchOperationsRequest(namespace=client.namespace)
        )
        if listing.operation_info:
            job_id = listing.operation_info[0].job_id
            described = await client.workflow_service.describe_batch_operation(
                DescribeBatchOperationRequest(namespace=client.namespace, job_id=job_id)
            )
            if described.state != BatchOperationState.BATCH_OPERATION_STATE_RUNNING:
                return {
                    "job_id": job_id,
                    "state": BatchOperationState.Name(described.state),
                    "complete": described.complete_operation_count,
                    "failed": described.failure_operation_count,
                }
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--events", type=int, default=6, help="events per member and phase")
    parser.add_argument("--rate", type=float, default=1_000.0, help="resets per second, at most")
    parser.add_argument("--concurrency", type=int, default=32, help="members in flight")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes for the fixed build, each side"
    )
    parser.add_argument("--no-cli", action="store_true", help="the desk only (large runs)")
    parser.add_argument(
        "--cli-first",
        action="store_true",
        help="time the CLI before the desk (on the fresh server) to see if order matters",
    )
    parser.add_argument(
        "--server-ops",
        action="store_true",
        help="count the server's persistence requests and calls per side (its /metrics)",
    )
    parser.add_argument("--page-size", type=int, default=50, help="members per preview page")
    parser.add_argument(
        "--correct-timeout",
        type=float,
        default=900.0,
        help="how long to wait for the CLI's members to be right",
    )
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
