"""Releases, rollback and replay check subcommands (audit: runtime/cli_audit.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from recovery.scan import ScanProgress
from runtime.cliutil import CliError, async_command, emit, target_of
from runtime.liability import LiabilityError, configured_rate
from workflows.rollback_messages import COMPARED_FIELDS

if TYPE_CHECKING:
    from runtime.releases import RollbackPreview
    from workflows.rollback import RollbackProgress

# -- rollback ---------------------------------------------------------------------

PROGRESS_EVERY_S = 2.0


def _preview_text(report: RollbackPreview) -> str:
    lines = [
        f"bad build {report.bad_build}: {report.affected} of {report.scanned} members "
        f"touched, {report.changing} change, {len(report.not_repairable)} cannot be repaired"
    ]
    lines.append(f"  {'member':<22} {'points':>15} {'tier':>20} {'lifetime':>15}  ledger")
    for row in report.members:
        b, a = row["before"], row["after"]
        mark = " " if row["changes"] else "="
        lines.append(
            f"{mark} {row['member_id']:<22} {b['points']:>6} -> {a['points']:<6} "
            f"{b['tier']:>9} -> {a['tier']:<8} {b['lifetime_points']:>6} -> "
            f"{a['lifetime_points']:<6}  -{len(row['ledger_removed'])} "
            f"+{len(row['ledger_added'])}" + (f"  ({row['problem']})" if row["problem"] else "")
        )
    for dropped in report.approvals_dropped:
        lines.append(
            f"  approval dropped: {dropped['proposal_id']} ({dropped['action']}, decided by "
            f"{dropped['decided_by']}): its trigger does not fire again after the repair"
        )
    t = report.totals
    lines.append(
        f"  totals: points {t.points_before} -> {t.points_after}, lifetime "
        f"{t.lifetime_points_before} -> {t.lifetime_points_after}; {t.stake_text()}"
    )
    if report.rows_left_out:
        lines.append(f"  ({report.rows_left_out:,} more members not listed; totals cover all)")
    lines.append(
        f"  preview kept as {report.preview_id}: repair exactly these members with "
        f"`rollback {report.bad_build} --execute --preview {report.preview_id} --reason ...`"
    )
    return "\n".join(lines)


def _progress_text(p: RollbackProgress) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(p.counts.items()))
    text = (
        f"rollback of {p.bad_build}: {p.state}; {p.total} members ({counts or 'none'}); "
        f"verified {p.verified_ok}, mismatches {max(len(p.mismatches), p.mismatch_count)}"
    )
    if p.preview_id:
        text += f"\n  preview {p.preview_id}: {p.pages_done} of {p.pages} pages done"
    for m in p.mismatches:
        text += f"\n  MISMATCH {m['member_id']}: {'; '.join(m['problems'])}"
    for m in p.not_repairable:
        text += f"\n  not repairable {m['member_id']}: {m['reason']}"
    if p.mismatch_count > len(p.mismatches):
        text += f"\n  ({p.mismatch_count - len(p.mismatches)} more mismatches not listed)"
    if p.error:
        text += f"\n  stopped: {p.error}"
    after = p.after_preview
    if after and after["affected"]:
        text += (
            f"\n  {after['affected']} members still carry {p.bad_build} "
            f"({after['repairable']} damaged after the preview, {after['not_repairable']} not "
            f"repairable): confirm them with `rollback {p.bad_build} --dry-run --preview "
            f"{after['preview_id']}`"
        )
    return text


@contextlib.asynccontextmanager
async def _shown(args: argparse.Namespace, scan: ScanProgress) -> AsyncIterator[None]:
    """While a preview runs, its progress on stderr every 2 s (not with --json)."""

    async def show() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            print(f"  {scan.tick().text()}", file=sys.stderr, flush=True)

    task = None if args.json else asyncio.create_task(show())
    try:
        yield
    finally:
        if task is not None:
            task.cancel()


async def _rollback(args: argparse.Namespace) -> int:
    from runtime import deployment, previews, releases
    from runtime.connect import connect
    from runtime.members import deployment_query
    from runtime.releases import rollback_id
    from workflows.ids import check_build_id

    target = target_of(args)
    build = check_build_id(args.build) if args.build else None
    client = await connect(target)
    controls: tuple[releases.RollbackControl, ...] = ("pause", "resume", "cancel")
    control = next((c for c in controls if getattr(args, c)), None)
    if args.status or control:
        if not build:
            return await _rollback_list(args, client)
        if control == "cancel" and not args.reason:
            raise CliError("cancelling a rollback needs --reason")
        try:
            if control:
                # audited once, in the operation the window shares
                progress = await releases.control_rollback(
                    client, target, build, control, reason=args.reason
                )
            else:
                progress = await releases.rollback_progress(client, build)
        except releases.ReleaseError as error:
            raise CliError(str(error)) from None
        data, text = dict(progress.__dict__), _progress_text(progress)
        if progress.state == releases.RollbackState.PLANNING:
            # finding the damage: how far, how fast, how long still (its last heartbeat)
            scan = await previews.planning_scan(client, build, progress)
            data["finding"] = scan.as_json() if scan else None
            text += f"\n  {scan.text() if scan else 'finding: starting'}"
        emit(args, data, text)
        # a rollback that stopped on an error, or left mismatches, is not a success
        failed = progress.state == releases.RollbackState.FAILED
        return 1 if progress.mismatches or failed else 0
    if not build:
        raise CliError("name the bad build: loyalty-desk rollback BUILD --dry-run|--execute")
    await deployment.load_drills(client, target.deployment)
    # only this deployment's members: other deployments on the namespace run other code
    query = deployment_query(target.deployment, args.query)
    if args.dry_run:
        try:
            rate = configured_rate(target.data_dir)  # the money at stake, as liability values it
        except LiabilityError as error:
            raise CliError(str(error)) from None
        async with _shown(args, scan := ScanProgress()):
            try:
                report = await releases.preview_rollback(
                    client,
                    build,
                    query,
                    task_queue=target.task_queue,
                    rate=rate,
                    progress=scan,
                    preview_id=args.preview,
                )
            except previews.PreviewError as error:
                raise CliError(str(error)) from None
        emit(args, report.as_json(), _preview_text(report))
        return 0
    if not args.execute:
        raise CliError("choose --dry-run (preview) or --execute (repair)")
    if not args.reason:
        raise CliError("a rollback needs --reason")
    await releases.check_rollback(client, target, build, args.reason)  # before the preview
    started = time.perf_counter()
    # the preview runs on the workers and the rollback acts on its pages as they come
    # (--execute is the person's confirmation of whatever the preview finds); with
    # --preview, exactly the members of a preview made (and read) before
    preview_id = args.preview or await previews.start_preview(
        client, target.task_queue, build, query
    )
    try:
        handle = await releases.start_rollback(
            client,
            target,
            build,
            reason=args.reason,
            preview_id=preview_id,
            rate_per_second=args.rate,
            concurrency=args.concurrency,
            query=query,
        )
    except releases.ReleaseError as error:
        raise CliError(str(error)) from None
    if args.no_wait:
        emit(
            args,
            {"rollback": rollback_id(build), "started": True, "preview": preview_id},
            f"rollback {rollback_id(build)} started on preview {preview_id}; follow it with "
            f"`rollback {build} --status`",
        )
        return 0
    while True:
        try:
            result = await asyncio.wait_for(asyncio.shield(handle.result()), PROGRESS_EVERY_S)
            break
        except TimeoutError:
            if not args.json:
                progress = await releases.rollback_progress(client, build)
                count = releases.RollbackCount.of(progress)
                line = f"{count.state}: {count.done}/{count.repairable}"
                if count.state == releases.RollbackState.PLANNING:
                    found = await previews.planning_scan(client, build, progress)
                    line = found.text() if found else line
                print(f"  {line}", file=sys.stderr)
    preview = await previews.preview_state(client, preview_id, build)
    data = dict(result.__dict__)
    data["seconds"] = {
        **result.seconds,  # the rollback's own states: planning, running, verifying
        "preview": previews.seconds_of(preview),
        "total": round(time.perf_counter() - started, 3),
    }
    emit(args, data, _progress_text(result) + f"\n  in {data['seconds']['total']} s")
    return 1 if result.mismatches or result.error else 0


async def _rollback_list(args: argparse.Namespace, client: Any) -> int:
    from runtime.releases import list_rollbacks

    rows = await list_rollbacks(client)
    emit(
        args,
        [r.as_json() for r in rows],
        "\n".join(f"{r.rollback:<30} {r.status:<12} {r.started}" for r in rows) or "no rollbacks",
    )
    return 0


# -- replay check ---------------------------------------------------------------------


async def _replay_check(args: argparse.Namespace) -> int:
    from runtime.connect import connect
    from runtime.replay_check import replay_check

    def progress(done: int, total: int) -> None:
        # before the report, one JSON line per member checked: for the window's progress
        print(json.dumps({"checked": done, "of": total}), flush=True)

    target = target_of(args)
    client = await connect(target)
    report = await replay_check(
        client,
        target.deployment,
        args.build,
        query=args.query,
        limit=args.limit,
        on_checked=progress if args.progress and args.json else None,
    )
    data = report.as_json()
    lines = [
        f"candidate {data['candidate']}" + (f" (drill {report.drill})" if report.drill else "")
    ]
    lines.append(f"  {'member':<22} {'runs':>4} {'events':>6}  verdict")
    for m in report.members:
        verdict = "GO" if m.go else "NO-GO"
        why = (
            m.nondeterminism
            or m.unchecked
            or ", ".join(f"{k} live {v[0]} vs candidate {v[1]}" for k, v in m.differences.items())
        )
        why = "; ".join(part for part in (why, m.note) if part)
        lines.append(
            f"  {m.member_id:<22} {m.runs:>4} {m.events:>6}  {verdict}"
            + (f": {why}" if why else "")
        )
    lines.append(f"{'GO' if report.go else 'NO-GO'}: {report.summary()}")
    emit(args, data, "\n".join(lines))
    return 0 if report.go else 1


# -- releases -------------------------------------------------------------------------


async def _release(args: argparse.Namespace) -> int:
    from runtime import releases
    from runtime.connect import connect
    from workflows.ids import check_build_id

    target = target_of(args)
    if args.release_command != "list":
        check_build_id(args.build)  # before any server call
    client = await connect(target)
    if args.release_command == "start":
        return await _release_start(args, client, target)
    if args.release_command == "set-current":
        if not args.reason:
            raise CliError("a release needs --reason")
        message = await releases.set_release(
            client, target, args.build, reason=args.reason, ramp=args.ramp
        )
        emit(args, {"build": args.build, "ramp": args.ramp}, message)
        return 0
    return await _release_list(args, client, target)


async def _release_list(args: argparse.Namespace, client: Any, target: Any) -> int:
    from runtime.releases import list_versions

    versions = await list_versions(client, target.deployment)
    if versions is None:
        raise CliError(f"deployment {target.deployment!r} has no versions yet: start a worker")
    rows = [v.as_json() for v in versions]
    text = [f"{'build':<24} {'status':<9} {'members':>8}"]
    text += [
        f"{r['build_id']:<24} {r['status']:<9} {r['members']:>8}"
        + (f"  ramp {r['ramp_percentage']}%" if r["status"] == "ramping" else "")
        + (f"  DRILL: {r['drill']}" if r["drill"] else "")
        + (f"  UNUSABLE: {r['problem']}" if r["problem"] else "")
        for r in rows
    ]
    emit(args, {"deployment": target.deployment, "versions": rows}, "\n".join(text))
    return 0


async def _release_start(args: argparse.Namespace, client: Any, target: Any) -> int:
    """Start a worker for a build in the background (runtime/workers.py), logging under
    the data dir; the same operation as the window's Start button."""
    from runtime.connect import server_address
    from runtime.workers import WorkerError, start_detached_worker, worker_command

    if not args.reason:
        raise CliError("starting a release needs --reason")
    command = worker_command(target, server_address(target), args.build, args.drill, args.reason)
    try:
        started = await start_detached_worker(client, target, command, args.reason)
    except WorkerError as error:
        raise CliError(error.reason) from None
    label = f" (DRILL: {args.drill})" if args.drill else ""
    emit(
        args,
        started.as_json(),
        f"worker for build {started.build}{label} running as pid {started.pid}; "
        f"log {started.log_path}",
    )
    return 0


# -- parser ---------------------------------------------------------------------------


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from workflows.drill import DRILLS

    p = sub.add_parser("release", parents=[common], help="deployment versions and workers")
    rsub = p.add_subparsers(dest="release_command", metavar="ACTION", required=True)
    rsub.add_parser("list", parents=[common], help="versions, which is current, members on each")
    q = rsub.add_parser("set-current", parents=[common], help="make a build current or ramp it")
    q.add_argument("build")
    q.add_argument("--ramp", type=float, metavar="PCT", help="ramp to PCT percent instead")
    q.add_argument("--reason", help="why (recorded in the audit log)")
    q = rsub.add_parser("start", parents=[common], help="start a worker for a build")
    q.add_argument("build")
    q.add_argument("--drill", choices=DRILLS, help="a drill build with this injected bug")
    q.add_argument("--reason", help="why (recorded in the audit log)")
    p.set_defaults(func=async_command(_release))

    p = sub.add_parser("rollback", parents=[common], help="repair members a bad build touched")
    p.add_argument("build", nargs="?", help="the bad build")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="preview: touches nothing")
    mode.add_argument("--execute", action="store_true", help="reset, re-deliver, verify")
    mode.add_argument("--status", action="store_true", help="progress of a rollback")
    mode.add_argument("--pause", action="store_true")
    mode.add_argument("--resume", action="store_true")
    mode.add_argument("--cancel", action="store_true")
    p.add_argument("--reason", help="why (required for --execute and --cancel)")
    p.add_argument("--query", help="only members matching this visibility query")
    p.add_argument("--rate", type=float, default=50.0, help="resets per second")
    p.add_argument("--concurrency", type=int, default=32, help="members in flight")
    p.add_argument(
        "--preview",
        metavar="ID",
        help="a kept preview: --dry-run shows it, --execute repairs exactly its members",
    )
    p.add_argument("--no-wait", action="store_true", help="start it and return")
    p.set_defaults(func=async_command(_rollback))

    p = sub.add_parser(
        "replay-check",
        parents=[common],
        help="replay live members against a candidate build: go / no-go",
    )
    p.add_argument("build", nargs="?", help="candidate build (default: the code installed here)")
    p.add_argument("--query", help="only members matching this visibility query")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument(
        "--progress",
        action="store_true",
        help='with --json: a line {"checked": K, "of": N} per member before the report',
    )
    p.set_defaults(func=async_command(_replay_check))


__all__ = ["COMPARED_FIELDS", "register"]
