"""The desktop app under load: launch to usable, event-loop stalls, a 100,000-member table.

One embedded server (the app's settings) in a temporary data dir holds members damaged
by a drill build (bench.rollback's three releases, on the bench's own deployment).
The app (bench.app_probe: `loyalty-desk` with a loop-lag probe, offscreen) then starts
on that data dir, finds the running server and starts its own worker, and is measured:

- `launch_to_usable_s`: process start until the window shows member rows;
- `max_stall_ingest_ms`: the longest the app's event loop was late (probe tick every
  5 ms) while live events went to new members through the app's worker and the
  table's refresh showed them;
- `max_stall_preview_ms`: the same while the app computed the rollback wizard's
  preview of the drill's damage (history reads and rebuilds on the app's loop);
- `max_stall_rollback_ms`: the same while the damage was previewed (by the bench)
  and a RollbackWorkflow repaired it;
- `max_stall_replay_check_ms`: the same while the Releases panel's replay check
  replayed the members the app's worker ran (in a child process since it held the
  GUI thread for seconds);
- `table_100k_s`: after `--table-members` members more were started cheaply (see
  `populate`), loading the table afresh and scrolling it to the last row, page by
  page through the app's lazy visibility paging; with fewer than 100,000 rows it is
  extrapolated (see `extrapolate`) and `table_100k_extrapolated` says so.

For each stall, the processor time the GUI thread and the whole app used during that
longest gap tell where it went (see bench.app_probe); `over_target` counts the
gaps of 50 ms or more.

    python -m bench.desktop [--table-members 100000] [--rollback-members 200]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from typing import Any

from bench.common import Bench, embedded, emit, machine, stop
from bench.ingest import send_all, traffic
from bench.rollback import BAD, damage
from bench.seed import populate, wait_listed
from desktop.members_loader import PAGE_SIZE
from recovery import repair
from runtime.connect import TASK_QUEUE
from workflows.rollback import RollbackInput, RollbackWorkflow

STALL_TARGET_MS = 50
TABLE_TARGET_ROWS = 100_000
LAUNCH_TIMEOUT_S = 180


class App:
    """The probed app in its own process, and what it reported."""

    def __init__(self, process: asyncio.subprocess.Process, spawned: float) -> None:
        self.process = process
        self.spawned = spawned
        # (time, late ms, GUI thread cpu ms, process cpu ms)
        self.lags: list[tuple[float, float, float, float]] = []
        self.collections: list[tuple[float, float]] = []  # (time, GUI-thread cpu ms)
        self._events: dict[str, asyncio.Future[list[str]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def launch(cls, bench: Bench) -> App:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_DESK_")}
        env["QT_QPA_PLATFORM"] = "offscreen"
        spawned = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.app_probe",
            "--data-dir",
            str(bench.data_dir),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        return cls(process, spawned)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            kind, *fields = raw.decode().split()
            if kind == "lag":
                at, late, thread_cpu, process_cpu = (float(f) for f in fields)
                self.lags.append((at, late, thread_cpu, process_cpu))
            elif kind == "gc":
                self.collections.append((float(fields[0]), float(fields[1])))
            else:
                self._future(kind).set_result(fields)
        for future in self._events.values():
            if not future.done():
                future.set_exception(RuntimeError("the app exited"))

    def _future(self, kind: str) -> asyncio.Future[list[str]]:
        if kind not in self._events:
            self._events[kind] = asyncio.get_running_loop().create_future()
        return self._events[kind]

    async def wait(self, kind: str, timeout: float) -> list[str]:
        """The fields of the app's first `kind` line."""
        return await asyncio.wait_for(asyncio.shield(self._future(kind)), timeout)

    async def outcome(self, kind: str, timeout: float) -> list[str]:
        """The fields of the app's first `kind` line; RuntimeError if it reports an error."""
        wanted, error = self._future(kind), self._future("error")
        await asyncio.wait_for(
            asyncio.wait([wanted, error], return_when=asyncio.FIRST_COMPLETED), timeout
        )
        if not wanted.done():
            del self._events["error"]  # reported here: a later check must not see it again
            raise RuntimeError("the app failed: " + " ".join(error.result()))
        return wanted.result()

    def reported(self, kind: str) -> bool:
        return kind in self._events and self._events[kind].done()

    async def command(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{text}\n".encode())
        await self.process.stdin.drain()

    def stall(self, started: float, ended: float) -> dict[str, float | int]:
        """The longest lateness of the loop between two moments, and how it was spent."""
        during = [lag for lag in self.lags if started <= lag[0] <= ended]
        worst = max(during, key=lambda lag: lag[1], default=(0.0, 0.0, 0.0, 0.0))
        return {
            "ms": round(worst[1], 1),
            "gui_thread_cpu_ms": round(worst[2], 1),
            "process_cpu_ms": round(worst[3], 1),
            "over_target": sum(1 for lag in during if lag[1] >= STALL_TARGET_MS),
            # the longest our own code held the GUI thread between two ticks
            "max_gui_thread_cpu_ms": round(max((lag[2] for lag in during), default=0.0), 1),
            "max_gc_ms": round(
                max((ms for at, ms in self.collections if started <= at <= ended), default=0.0),
                1,
            ),
        }

    async def quit(self) -> None:
        if self.process.returncode is None:
            await self.command("quit")
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader


async def rollback(bench: Bench) -> dict[str, Any]:
    """Preview the drill's damage and repair it with a RollbackWorkflow, as the app does."""
    _, found = await repair.find_damage(bench.client, BAD)
    previews = await repair.bounded(found, lambda d: repair.preview_member(bench.client, d), 32)
    progress = await bench.client.execute_workflow(
        RollbackWorkflow.run,
        RollbackInput(
            bad_build=BAD,
            reason="bench",
            actor="bench",
            expected={p.member_id: p.after for p in previews},
        ),
        id="rollback-desktop-bench",
        task_queue=bench.task_queue,
    )
    return {"affected": len(found), "mismatches": len(progress.mismatches)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "desktop", "machine": machine()}
    damaged = [f"rb-{i:05d}" for i in range(args.rollback_members)]
    async with embedded(worker=False) as bench:
        workers = await damage(bench.client, bench, "default", damaged, args.events)
        app = await App.launch(bench)
        try:
            usable = float((await app.wait("usable", LAUNCH_TIMEOUT_S))[0])
            result["launch_to_usable_s"] = round(usable - app.spawned, 2)
            result["stall_launch"] = app.stall(usable - 60, usable)

            # live events to new members, through the app's own worker
            await app.wait("worker", LAUNCH_TIMEOUT_S)
            fed = dataclasses.replace(bench, task_queue=TASK_QUEUE)
            await send_all(fed, "MemberWorkflow", traffic(5, 2, "warm"), bulk=False)
            started = time.monotonic()
            rate = await send_all(
                fed,
                "MemberWorkflow",
                traffic(args.ingest_members, args.ingest_events, "in"),
                bulk=False,
            )
            result["stall_ingest"] = app.stall(started, time.monotonic())
            result["ingest_events_per_s"] = round(rate, 1)

            # the wizard's preview of the drill's damage, computed in the app
            started = time.monotonic()
            await app.command(f"preview {BAD} {bench.deployment}")
            seconds, affected = await app.outcome("previewed", 1800)
            result["stall_preview"] = app.stall(started, time.monotonic())
            result["preview"] = {"seconds": float(seconds), "affected": int(affected)}

            started = time.monotonic()
            result["rollback"] = await rollback(bench)
            ended = time.monotonic()
            result["rollback"]["seconds"] = round(ended - started, 1)
            result["stall_rollback"] = app.stall(started, ended)

            # the Releases panel's replay check of the members the app's worker ran
            started = time.monotonic()
            await app.command("replay")
            try:
                seconds, checked, verdict = await app.outcome("replayed", 1800)
                result["replay_check"] = {
                    "seconds": float(seconds),
                    "members": int(checked),
                    "verdict": verdict,
                }
            except RuntimeError as error:  # its dialog's reason: the stall still counts
                result["replay_check"] = {"error": str(error)}
            result["stall_replay_check"] = app.stall(started, time.monotonic())

            started = time.monotonic()
            result["members_started_per_s"] = round(await populate(bench, args.table_members), 1)
            total = args.table_members + args.rollback_members + args.ingest_members + 5
            await wait_listed(bench, total)
            result["stall_populate"] = app.stall(started, time.monotonic())

            started = time.monotonic()
            await app.command("scroll")
            seconds, rows, listed, first, early, late = await app.wait("scrolled", 3600)
            if app.reported("error"):
                raise RuntimeError(" ".join(await app.wait("error", 0)))
            result["stall_scroll"] = app.stall(started, time.monotonic())
            result["table"] = {
                "rows": int(rows),
                "listed": int(listed),
                "seconds": float(seconds),
                "first_page_s": float(first),
                "page_s_first_ten": float(early),
                "page_s_last_ten": float(late),
            }
        finally:
            await app.quit()
            for worker in workers:
                await stop(worker)
    table = result["table"]
    result["table_100k_extrapolated"] = table["rows"] < TABLE_TARGET_ROWS
    result["table_100k_s"] = (
        round(table["seconds"], 1)
        if table["rows"] >= TABLE_TARGET_ROWS
        else extrapolate(table, TABLE_TARGET_ROWS)
    )
    result["max_stall_ingest_ms"] = result["stall_ingest"]["ms"]
    result["max_stall_preview_ms"] = result["stall_preview"]["ms"]
    result["max_stall_rollback_ms"] = result["stall_rollback"]["ms"]
    result["max_stall_replay_check_ms"] = result["stall_replay_check"]["ms"]
    result["stall_target_ms"] = STALL_TARGET_MS
    return result


def extrapolate(table: dict[str, Any], rows: int) -> float:
    """Seconds to scroll `rows` rows, from a smaller table: a page read takes a + b *
    offset, fitted to the median of the first and the last ten pages (read later in
    a longer list, a page took longer), plus what the measured run spent besides reading
    pages, scaled by rows."""
    size = PAGE_SIZE
    measured = table["rows"] // size  # pages the scroll read (first page aside)
    early, late = table["page_s_first_ten"], table["page_s_last_ten"]
    early_at, late_at = 5 * size, max(6 * size, table["rows"] - 5 * size)
    slope = max(0.0, (late - early) / (late_at - early_at))
    base = early - slope * early_at

    def reading(pages: int) -> float:
        return pages * base + slope * size * pages * (pages + 1) / 2

    other = max(0.0, table["seconds"] - table["first_page_s"] - reading(measured))
    return round(table["first_page_s"] + reading(rows // size) + other * rows / table["rows"], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table-members", type=int, default=TABLE_TARGET_ROWS)
    parser.add_argument("--rollback-members", type=int, default=200)
    parser.add_argument("--events", type=int, default=6, help="events per damaged member and phase")
    parser.add_argument("--ingest-members", type=int, default=100)
    parser.add_argument("--ingest-events", type=int, default=50, help="live events per member")
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
