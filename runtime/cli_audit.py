"""The audit subcommands: `audit` (the newest entries), `audit export`, `audit verify`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from runtime import audit_log
from runtime.cliutil import CliError, async_command, emit, target_of


async def _audit(args: argparse.Namespace) -> int:
    command = getattr(args, "audit_command", None) or "list"
    if command == "export":
        return await _export(args)
    if command == "verify":
        return await _verify(args)
    return await _list(args)


async def _list(args: argparse.Namespace) -> int:
    from runtime.connect import connect

    client = await connect(target_of(args))
    rows = await audit_log.entries(client, limit=args.limit)
    emit(
        args,
        rows,
        "\n".join(
            f"{r['at'][:19]}  {r['actor']:<28} {r['action']:<20} {r['subject']:<16} {r['reason']}"
            + (f"  -> {r['outcome']}" if r.get("outcome") else "")
            for r in rows
        )
        or "the audit log is empty",
    )
    return 0


async def _record(args: argparse.Namespace) -> Any:
    from runtime import audit
    from runtime.connect import connect

    target = target_of(args)
    client = await connect(target)
    try:
        return await audit_log.read_record(client, target.data_dir)
    except audit.AuditError as error:
        raise CliError(str(error)) from None


async def _export(args: argparse.Namespace) -> int:

    record = await _record(args)
    text = audit_log.export_text(record.rows(), args.format)
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
        print(f"{len(record.rows())} entries written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


async def _verify(args: argparse.Namespace) -> int:

    if args.file:
        try:
            rows = audit_log.read_export(Path(args.file))
        except OSError as error:
            raise CliError(f"cannot read {args.file}: {error.strerror}") from None
        verdict = audit_log.verify_rows(rows, where=str(args.file))
    else:
        verdict = audit_log.verify_record(await _record(args))
    emit(args, verdict.as_json(), verdict.text())
    return 0 if verdict.ok else 1


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("audit", parents=[common], help="who did what, when, why; export, verify")
    p.add_argument("--limit", type=int, default=100, help="newest entries to list")
    p.set_defaults(func=async_command(_audit))
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    q = asub.add_parser("list", parents=[common], help="the newest entries (the default)")
    q.add_argument("--limit", type=int, default=100)
    q = asub.add_parser("export", parents=[common], help="the whole record: archive and live")
    q.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    q.add_argument("--output", "-o", help="write to this file (default: stdout)")
    q = asub.add_parser(
        "verify", parents=[common], help="check the hash chain; names the first broken entry"
    )
    q.add_argument("--file", help="an exported file (CSV or JSON Lines) instead of the store")
