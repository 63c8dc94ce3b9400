"""`loyalty-desk feed`, `member` and `members`: send events, read one member, list them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from runtime.cliutil import CliError, async_command, emit, target_of

MEMBER_REJECTIONS_SHOWN = 10
REJECTS_SHOWN = 20  # lines of rejections printed; the rejects log has every one


def _read_feed(args: argparse.Namespace) -> tuple[list[tuple[int, object]], str]:
    """The numbered input lines (or generated events) and a label for the rejects log."""
    from runtime import feed

    if args.simulate is not None:
        from runtime.simulate import simulate

        generated = list(simulate(args.simulate, args.members, args.seed, prefix=args.prefix))
        if args.out:
            with open(args.out, "w", encoding="utf-8") as out:
                out.writelines(json.dumps(e) + "\n" for e in generated)
        source = f"simulate:{args.simulate}x{args.members}:seed{args.seed}"
        return list(enumerate(generated, start=1)), source
    if args.file == "-":
        return list(feed.read_lines(sys.stdin.buffer)), "stdin"
    if not args.file:
        raise CliError("give a JSON Lines FILE, - for stdin, or --simulate N")
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    with path.open("rb") as stream:
        return list(feed.read_lines(stream)), str(path)


def cmd_feed(args: argparse.Namespace) -> int:
    numbered, source = _read_feed(args)
    return asyncio.run(_feed(args, numbered, source))


async def _feed(args: argparse.Namespace, numbered: list[tuple[int, object]], source: str) -> int:
    from runtime import feed
    from runtime.connect import connect

    target = target_of(args)
    batch = feed.check(numbered)
    client = await connect(target)
    report = await feed.deliver(client, target, batch, bulk=args.bulk)
    feed.record_rejects(target.data_dir, source, report.rejects)
    data = report.as_json()
    if args.wait:
        states = await feed.wait_applied(client, batch.by_member)
        data["applied"] = {
            "members": len(states),
            "events_processed": sum(s["events_processed"] for s in states.values()),
            "events_rejected": sum(s["events_rejected"] for s in states.values()),
        }
    lines = [
        f"accepted {report.accepted}, rejected {report.rejected}"
        + (f", {report.duplicates} repeated ids (counted once)" if report.duplicates else "")
        + f"; {report.members} members, {report.signals} signals in {report.seconds:.2f} s"
    ]
    lines += [
        f"  line {r.line}: {r.reason}" + (f" [{r.event_id}]" if r.event_id else "")
        for r in report.rejects[:REJECTS_SHOWN]
    ]
    if report.rejects:
        log = feed.rejects_log(target.data_dir)
        data["rejects_log"] = str(log)
        more = len(report.rejects) - REJECTS_SHOWN
        lines.append(
            (f"  ... and {more:,} more; " if more > 0 else "  ")
            + f"all {len(report.rejects):,} rejections of this feed are in {log}"
        )
    emit(args, data, "\n".join(lines))
    return 0


# -- member / members -----------------------------------------------------------


async def _member(args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowExecutionStatus

    from recovery.found import if_found
    from runtime.connect import connect
    from runtime.members import closed_how
    from workflows.member import MemberWorkflow, member_workflow_id

    client = await connect(target_of(args))
    handle = client.get_workflow_handle(member_workflow_id(args.member_id))
    state = await if_found(handle.query(MemberWorkflow.state))
    if state is None:
        raise CliError(f"unknown member {args.member_id!r}")
    text = []
    if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
        # its last state, read from the history: nothing more is applied to it
        state["workflow_closed"] = await closed_how(client, args.member_id)
        text.append(
            f"NOT RUNNING: the member's workflow is {state['workflow_closed']}; it takes no "
            "events until it is repaired (reset). Its state when it ended:"
        )
    text += [
        f"{state['member_id']}: {state['points']} points, {state['tier']}, "
        f"lifetime {state['lifetime_points']}, build {state['build_id']}"
        + (f" (DRILL {state['drill']})" if state.get("drill") else ""),
        f"  events processed {state['events_processed']}, rejected {state['events_rejected']}, "
        f"duplicates ignored {state['duplicates_ignored']}, run {state['runs']}",
    ]
    grant = state.get("tier_override")
    if grant:
        text.append(
            f"  tier granted: {grant['tier']} ({grant['bound']}) from {grant['granted_at']} "
            f"until {grant['until']}, by {grant['cause']}"
        )
    text += [
        f"  #{e['seq']} {e['at']} {e['kind']:<10} {e['delta']:+7d} -> {e['balance']:>7d}  "
        f"{e['cause']} [{e['build']}]"
        for e in state["ledger"][-args.ledger :]
    ]
    kept = state["rejections"]
    if state["events_rejected"]:
        # the member keeps only its latest rejections; the count covers every one
        shown = kept[-MEMBER_REJECTIONS_SHOWN:]
        text.append(
            f"  rejections: {state['events_rejected']:,} in all; the member keeps the last "
            f"{len(kept)}, the last {len(shown)} shown"
        )
        text += [f"  rejected {r['event_id']}: {r['reason']}" for r in shown]
    emit(args, state, "\n".join(text))
    return 0


async def _members(args: argparse.Namespace) -> int:
    from runtime.connect import connect
    from runtime.members import list_members

    client = await connect(target_of(args))
    rows = await list_members(client, args.query, limit=args.limit)
    text = [f"{'member':<20} {'tier':<9} {'points':>8}  {'last event':<21} build"]
    text += [
        f"{r['member_id']:<20} {r['tier'] or '-':<9} {r['points'] or 0:>8}  "
        f"{r['last_event_at'] or '-':<21} {r['build_id'] or '-'}"
        + (f" DRILL {r['drill']}" if r["drill"] else "")
        for r in rows
    ]
    text.append(f"{len(rows)} members")
    emit(args, rows, "\n".join(text))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("feed", parents=[common], help="send events from JSON Lines")
    p.add_argument("file", nargs="?", help="JSON Lines file, or - for stdin")
    p.add_argument("--simulate", type=int, metavar="N", help="generate N events instead")
    p.add_argument("--members", type=int, default=100, help="members for --simulate")
    p.add_argument("--seed", type=int, default=0, help="seed for --simulate")
    p.add_argument("--prefix", default="sim", help="member id prefix for --simulate")
    p.add_argument("--out", help="also write the generated events to this file")
    p.add_argument("--bulk", action="store_true", help="one `events` signal per member chunk")
    p.add_argument("--wait", action="store_true", help="wait until members applied them")
    p.set_defaults(func=cmd_feed)

    p = sub.add_parser("member", parents=[common], help="one member's state")
    p.add_argument("member_id")
    p.add_argument("--ledger", type=int, default=10, help="ledger entries to show")
    p.set_defaults(func=async_command(_member))

    p = sub.add_parser("members", parents=[common], help="list members")
    p.add_argument("--query", help="visibility query, e.g. \"LoyaltyTier='Gold'\"")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=async_command(_members))
