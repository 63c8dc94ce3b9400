"""What the whole record costs per audit entry: the chained, archived audit log against
the plain log it replaced, in the same process, on one embedded server and worker.

Both get the same `--entries` entries as signal-with-start (what `audit.record` does),
`--in-flight` at a time, with a continue-as-new every `--per-run` entries; each is timed
until its last entry is applied (for the audit log: chained, and every full run's
entries archived). Besides elapsed time, the processor time the server and the worker
used (`cpu_*`), which other work on the machine barely moves. Then, in this process
alone, the two pieces the chain adds: hashing an entry and appending it to the archive.

    python -m bench.audit [--entries 3000] [--per-run 500] [--in-flight 16]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from activities.audit_archive import append
from bench.common import Bench, Timer, embedded, emit, machine
from bench.noop import PlainLogWorkflow
from workflows.audit import AUDIT_WORKFLOW_ID, AuditCarry, AuditEntry, AuditWorkflow, entry_hash

STUCK_S = 120


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        action="approval.approve",
        actor="ops@desk-01",
        reason=f"checked the receipt {n}",
        subject=f"member-{n % 997:05d}:t{n}:0",
        details={"digest": f"{n:064x}", "policy": None},
        outcome="approved",
    )


async def send_all(
    count: int, in_flight: int, send: Callable[[AuditEntry], Awaitable[Any]]
) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def one(n: int) -> None:
        async with gate:
            await send(entry(n))

    await asyncio.gather(*(one(n) for n in range(count)))


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + STUCK_S
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError("entries not applied within the time allowed")
        await asyncio.sleep(0.05)


async def plain(bench: Bench, args: argparse.Namespace) -> tuple[float, float]:
    workflow_id = "plain-log"

    async def send(e: AuditEntry) -> None:
        await bench.client.start_workflow(
            PlainLogWorkflow.run,
            args=[0, args.per_run],
            id=workflow_id,
            task_queue=bench.task_queue,
            start_signal="record",
            start_signal_args=[e],
        )

    async def done() -> bool:
        handle = bench.client.get_workflow_handle(workflow_id)
        return int(await handle.query(PlainLogWorkflow.count)) >= args.entries

    return await timed(bench, args, send, done)


async def chained(bench: Bench, args: argparse.Namespace) -> tuple[float, float]:
    await bench.client.start_workflow(
        AuditWorkflow.run,
        AuditCarry(records_per_run=args.per_run),
        id=AUDIT_WORKFLOW_ID,
        task_queue=bench.task_queue,
    )

    async def send(e: AuditEntry) -> None:
        await bench.client.start_workflow(
            AuditWorkflow.run,
            id=AUDIT_WORKFLOW_ID,
            task_queue=bench.task_queue,
            start_signal="record",
            start_signal_args=[e],
        )

    async def done() -> bool:
        handle = bench.client.get_workflow_handle(AUDIT_WORKFLOW_ID)
        live = await handle.query(AuditWorkflow.entries)
        anchors = await handle.query(AuditWorkflow.anchors)
        last = max([e.seq for e in live] + [a.last for a in anchors] + [0])
        # every entry chained, and every full run archived and continued as new
        return last >= args.entries and len(live) < args.per_run

    return await timed(bench, args, send, done)


async def timed(
    bench: Bench,
    args: argparse.Namespace,
    send: Callable[[AuditEntry], Awaitable[Any]],
    done: Callable[[], Awaitable[bool]],
) -> tuple[float, float]:
    cpu = bench.cpu_seconds()
    with Timer() as timer:
        await send_all(args.entries, args.in_flight, send)
        await until(done)
    return timer.seconds, bench.cpu_seconds() - cpu


def local_costs(count: int) -> dict[str, float]:
    """Microseconds per entry for the hash, and for an archive append in batches of 500."""
    entries = [entry(n) for n in range(count)]
    prev = ""
    with Timer() as hashing:
        for seq, e in enumerate(entries, 1):
            e.seq, e.prev = seq, prev
            e.hash = prev = entry_hash(e.__dict__)
    with tempfile.TemporaryDirectory() as tmp, Timer() as appending:
        path = Path(tmp) / "archive.jsonl"
        for start in range(0, count, 500):
            append(path, entries[start : start + 500])
    return {
        "hash_us_per_entry": round(hashing.seconds / count * 1e6, 2),
        "archive_append_us_per_entry": round(appending.seconds / count * 1e6, 2),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with embedded() as bench:
        base_s, base_cpu = await plain(bench, args)
        chain_s, chain_cpu = await chained(bench, args)
        archive_lines = len((bench.data_dir / "audit-archive.jsonl").read_text().splitlines())
    n = args.entries
    return {
        "bench": "audit",
        "entries": n,
        "per_run": args.per_run,
        "in_flight": args.in_flight,
        "baseline_plain_log": {
            "ms_per_entry": round(base_s / n * 1e3, 3),
            "cpu_ms_per_entry": round(base_cpu / n * 1e3, 3),
        },
        "chained_archived_log": {
            "ms_per_entry": round(chain_s / n * 1e3, 3),
            "cpu_ms_per_entry": round(chain_cpu / n * 1e3, 3),
            "archived_entries": archive_lines,
        },
        "ratio_elapsed": round(chain_s / base_s, 3),
        "ratio_cpu": round(chain_cpu / base_cpu, 3) if base_cpu else None,
        "in_process": local_costs(n),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=3000)
    parser.add_argument("--per-run", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=16)
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
