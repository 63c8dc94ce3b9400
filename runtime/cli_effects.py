"""`loyalty-desk effects ...`: where approved effects go and what became of them."""

from __future__ import annotations

import argparse
from typing import Any

from runtime.cliutil import CliError, async_command, emit, target_of


def _line(row: dict[str, Any]) -> str:
    text = (
        f"{row['status']:<9} {row['effect_id']}  {row.get('kind', '-')} for "
        f"{row.get('member_id', '-')}, {row.get('attempts', 0)} attempt(s)"
    )
    if row["status"] != "delivered" and row.get("detail"):
        text += f"\n          {row['detail']}"
    return text


async def _effects(args: argparse.Namespace) -> int:
    from runtime import effects
    from runtime.connect import connect

    target = target_of(args)
    client = await connect(target)
    command = args.effects_command
    try:
        if command == "list":
            rows = await effects.list_effects(
                client, target, status=args.status, member=args.member, limit=args.limit
            )
            tally = await effects.counts(client, target, args.member)
            text = [_line(r) for r in rows]
            text.append(
                f"{len(rows)} shown; pending (undelivered) {tally['pending']}, "
                f"delivered {tally['delivered']}, failed {tally['failed']}"
                + (f", superseded {tally['superseded']}" if tally["superseded"] else "")
            )
            emit(args, {"effects": rows, "counts": tally}, "\n".join(text))
        elif command == "show":
            row = await effects.show(client, args.effect_id)
            text = [_line(row)]
            text += [
                f"  {d['type']} {d['target']}: {d['status']} after {d['attempts']} attempt(s)"
                f"; last answer {d['answer'] or '-'}"
                for d in (row.get("deliveries") or {}).values()
            ]
            emit(args, row, "\n".join(text))
        elif command == "retry":
            row = await effects.retry(client, target, args.effect_id, reason=args.reason)
            emit(args, {"retrying": row["effect_id"]}, f"retrying {row['effect_id']}")
        elif command in ("set", "smtp"):
            await _configure(args, client, target)
        else:
            _print_config(args, await effects.config(client, target), target.deployment, None)
    except effects.EffectsError as error:
        raise CliError(str(error)) from None
    return 0


async def _configure(args: argparse.Namespace, client: Any, target: Any) -> None:
    from runtime import effects

    if args.effects_command == "set":
        given = effects.destinations_of(args.webhook or [], args.email or [])
        if not given and not args.none:
            raise CliError("give --webhook URL and/or --email ADDRESS, or --none")
        if given and args.none:
            raise CliError("--none takes no destination with it")
        result = await effects.change_config(
            client, target, destinations={args.kind: given}, reason=args.reason
        )
    else:
        smtp: dict[str, Any] = {
            "host": args.host,
            "port": args.port,
            "sender": args.sender,
            "starttls": not args.no_starttls,
        }
        if args.username:
            smtp["username"] = args.username
        if args.ca_file:
            smtp["ca_file"] = args.ca_file
        result = await effects.change_config(client, target, smtp=smtp, reason=args.reason)
    _print_config(args, result.config, target.deployment, result.woken)


def _print_config(
    args: argparse.Namespace, config: Any, deployment: str, woken: int | None
) -> None:
    from runtime import effects
    from workflows.effects import KINDS

    text = [f"effects of {deployment} (version {config.version}), for every worker:"]
    for kind in KINDS:
        items = config.destinations.get(kind) or []
        shown = ", ".join(effects.describe_destination(i) for i in items) or (
            "none: they wait undelivered"
        )
        text.append(f"  {kind:<12} {shown}")
    if config.smtp:
        smtp = config.smtp
        text.append(
            f"  smtp         {smtp.get('host')}:{smtp.get('port')} from {smtp.get('sender')}"
            + (f" as {smtp['username']}" if smtp.get("username") else "")
            + ("" if smtp.get("starttls", True) else " (no STARTTLS)")
        )
    if woken:
        text.append(f"{woken} waiting effect(s) told to try again")
    data = {
        "deployment": deployment,
        "version": config.version,
        "destinations": config.destinations,
        "smtp": config.smtp,
        "changes": config.changes,
    }
    if woken is not None:
        data["woken"] = woken
    emit(args, data, "\n".join(text))


def _receive(args: argparse.Namespace) -> int:
    from runtime.effects_receiver import serve_forever

    return serve_forever(args.host, args.port)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from workflows.effects import KINDS, STATUSES

    p = sub.add_parser(
        "effects", parents=[common], help="approved effects: where they go, what became of them"
    )
    esub = p.add_subparsers(dest="effects_command", metavar="ACTION", required=True)
    q = esub.add_parser("list", parents=[common], help="effects and their delivery, newest first")
    q.add_argument("--status", choices=STATUSES)
    q.add_argument("--member", help="one member's effects")
    q.add_argument("--limit", type=int, default=100)
    q = esub.add_parser("show", parents=[common], help="one effect, each destination's answer")
    q.add_argument("effect_id")
    q = esub.add_parser("retry", parents=[common], help="try a failed effect again (audited)")
    q.add_argument("effect_id")
    q.add_argument("--reason", default="retried by the operator", help="why")
    esub.add_parser("config", parents=[common], help="where each kind of effect goes")
    q = esub.add_parser("set", parents=[common], help="where one kind of effect goes (audited)")
    q.add_argument("kind", choices=KINDS)
    q.add_argument("--webhook", action="append", metavar="URL", help="POST signed JSON here")
    q.add_argument(
        "--email", action="append", metavar="ADDRESS", help="messages: `{member_id}` is replaced"
    )
    q.add_argument("--none", action="store_true", help="no destination: effects wait")
    q.add_argument("--reason", required=True, help="why (recorded with who and when)")
    q = esub.add_parser("smtp", parents=[common], help="the SMTP server for email (audited)")
    q.add_argument("--host", required=True)
    q.add_argument("--port", type=int, default=587)
    q.add_argument("--sender", required=True, help="the From address")
    q.add_argument("--username", help="login (the password: `loyalty-desk secrets set smtp`)")
    q.add_argument("--ca-file", help="trust this CA (PEM) for the server's certificate")
    q.add_argument(
        "--no-starttls", action="store_true", help="plain SMTP (a server on this machine only)"
    )
    q.add_argument("--reason", required=True, help="why (recorded with who and when)")
    q = esub.add_parser(
        "receive",
        parents=[common],
        help="a local webhook receiver that checks signatures and prints what arrives",
    )
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--port", type=int, default=8765)
    q.set_defaults(func=_receive)
    p.set_defaults(func=async_command(_effects))
