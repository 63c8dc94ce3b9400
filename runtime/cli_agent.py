"""Agent and approvals subcommands: `approvals`, `costs`, `guardrails`; `secrets` and
`model` (runtime/cli_keys.py) registered here.

Every decision records who (the OS user), when (workflow time) and why (--reason,
required). Heavy imports stay inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime.cli_keys import model_command, secrets_command
from runtime.cliutil import CliError, async_command, emit, target_of
from workflows.proposals import arguments_text


def _args_text(p: dict[str, Any]) -> str:
    text = arguments_text(p.get("action"), p.get("arguments") or {})
    if p.get("action") == "message_member":
        return repr(text if len(text) <= 40 else text[:37] + "...")
    return text


# -- approvals ------------------------------------------------------------------


async def _approvals(args: argparse.Namespace) -> int:
    from runtime import approvals
    from runtime.connect import connect

    target = target_of(args)
    client = await connect(target)
    args.task_queue = target.task_queue
    try:
        if args.approvals_command == "list":
            return await _list(args, client)
        if args.approvals_command in ("approve", "reject"):
            result = await approvals.decide(
                client,
                args.proposal_id,
                digest=args.digest,
                task_queue=target.task_queue,
                approve=args.approvals_command == "approve",
                reason=args.reason,
            )
            emit(args, result.__dict__, f"{result.proposal_id}: {result.message}")
            return 0
        return await _decide(args, client)
    except approvals.ApprovalError as error:
        raise CliError(str(error)) from None


async def _list(args: argparse.Namespace, client: Any) -> int:
    from runtime import approvals

    unreachable: list[str] = []
    rows = await approvals.proposals(
        client,
        status=args.status,
        action=args.action,
        member=args.member,
        query=args.query,
        limit=args.limit,
        task_queue=args.task_queue,
        unreachable=unreachable,
    )
    if unreachable:
        print(
            f"loyalty-desk: warning: {len(unreachable)} members did not answer "
            f"(is a worker running?), e.g. {unreachable[0]}",
            file=sys.stderr,
        )
    text = [
        f"{'proposal':<40} {'action':<15} {'arguments':<20} {'status':<9} {'expires / decided'}"
    ]
    for p in rows:
        when = (
            f"expires {p['expires_at']}"
            if p["status"] == "pending"
            else f"{p['decided_by']} {p['decided_at']}"
        )
        text.append(f"{p['id']:<40} {p['action']:<15} {_args_text(p):<20} {p['status']:<9} {when}")
        text.append(f"    {p['reason']}  [{p['model']}]  digest {approvals.shown_digest(p)}")
    text.append(f"{len(rows)} proposals")
    emit(args, rows, "\n".join(text))
    return 0


async def _decide(args: argparse.Namespace, client: Any) -> int:
    from runtime import approvals

    if args.status:
        return await _bulk_status(args, client)
    if not args.policy or not (args.approve or args.reject) or not args.reason:
        raise CliError("approvals decide needs --policy, --approve or --reject, and --reason")
    policy = approvals.parse_policy(args.policy)
    report = await approvals.decide_by_policy(
        client,
        policy,
        approve=args.approve,
        reason=args.reason,
        dry_run=args.dry_run,
        task_queue=args.task_queue,
        wait=not args.no_wait,
    )
    verb = "approve" if args.approve else "reject"
    if args.no_wait and not args.dry_run:
        started = ", ".join(report.bulk_ids)
        emit(
            args,
            report.as_json(),
            f"policy {policy.text!r}: {report.matched} pending proposals matched; deciding "
            f"them in {started} (`approvals decide --status` follows it)",
        )
        return 0
    text = [
        f"policy {policy.text!r}: {report.matched} pending proposals matched, "
        + (f"would {verb} them" if args.dry_run else f"{len(report.decided)} {verb}d")
        + (f", {len(report.failed)} failed" if report.failed else "")
    ]
    text += [f"  {f['proposal_id']}: {f['reason']}" for f in report.failed]
    emit(args, report.as_json(), "\n".join(text))
    if report.failed:
        first = report.failed[0]
        print(
            f"loyalty-desk: error: {len(report.failed)} of {report.matched} decisions failed "
            f"(first: {first['proposal_id']}: {first['reason']})",
            file=sys.stderr,
        )
        return 1
    return 0


async def _bulk_status(args: argparse.Namespace, client: Any) -> int:
    """The latest bulk decisions: running ones as far as they are, finished ones' counts."""
    from runtime import approvals
    from runtime.bulk_decisions import progress_text

    rows = await approvals.bulk_decisions(client)
    text = [f"{r.bulk_id}  {progress_text(r)}" for r in rows]
    emit(args, [r.as_json() for r in rows], "\n".join(text) or "no bulk decisions")
    return 0


# -- costs ----------------------------------------------------------------------


async def _costs(args: argparse.Namespace) -> int:
    from runtime import approvals
    from runtime.connect import connect

    target = target_of(args)
    client = await connect(target)
    data = await approvals.costs(client, args.query, task_queue=target.task_queue)
    t = data["totals"]
    text = [
        f"{data['members_with_agent_use']} of {data['members_asked']} members used the agent: "
        f"{t['model_calls']} model calls, {t['tokens']} tokens "
        f"({t['input_tokens']} in, {t['output_tokens']} out), est. ${t['cost_usd']:.4f}",
        f"  {'action':<16} {'proposals':>9} {'approved':>8} {'rejected':>8} {'expired':>7} "
        f"{'tokens':>8} {'est. $':>9}",
    ]
    for action, row in data["by_action"].items():
        text.append(
            f"  {action:<16} {row.get('proposals', 0):>9} {row.get('approved', 0):>8} "
            f"{row.get('rejected', 0):>8} {row.get('expired', 0):>7} {row.get('tokens', 0):>8} "
            f"{row.get('cost_usd', 0.0):>9.4f}"
        )
    emit(args, data, "\n".join(text))
    return 0


# -- guardrails -------------------------------------------------------------------


def _guardrail_values(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise CliError(f"expected NAME=VALUE, got {pair[:60]!r}")
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            values[name.strip()] = lowered == "true"
            continue
        try:
            values[name.strip()] = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise CliError(f"{name.strip()}: {text[:40]!r} is not a whole number") from None
    return values


async def _guardrails(args: argparse.Namespace) -> int:
    from runtime import guardrails
    from runtime.connect import connect
    from workflows.agent_policy import AgentPolicy

    target = target_of(args)
    client = await connect(target)
    if args.guardrails_command == "set":
        try:
            state = await guardrails.change(
                client,
                target,
                _guardrail_values(args.values),
                reason=args.reason,
                reset=args.reset or [],
            )
        except guardrails.GuardrailsError as error:
            raise CliError(str(error)) from None
    else:
        state = await guardrails.current(client, target.deployment)
    policy = state.policy().as_dict()
    data = {
        "deployment": target.deployment,
        "version": state.version,
        "changed": state.values,
        "policy": policy,
        "changes": state.changes,
    }
    defaults = AgentPolicy().as_dict()
    text = [f"guardrails of {target.deployment} (version {state.version}), for every worker:"]
    text += [
        f"  {name:<34} {value!s:>12}" + ("" if value == defaults[name] else "  (changed)")
        for name, value in policy.items()
    ]
    if state.changes:
        last = state.changes[-1]
        text.append(f"last change: {last['at']} by {last['actor']}: {last['reason']}")
    emit(args, data, "\n".join(text))
    return 0


# -- secrets ----------------------------------------------------------------------


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this capability's subcommands to the `loyalty-desk` parser."""
    from runtime import secrets
    from workflows.agent_policy import ACTIONS

    p = sub.add_parser("approvals", parents=[common], help="the agent's proposals across members")
    asub = p.add_subparsers(dest="approvals_command", metavar="ACTION", required=True)
    q = asub.add_parser("list", parents=[common], help="proposals (pending by default)")
    q.add_argument(
        "--status", default="pending", choices=("pending", "approved", "rejected", "expired", "all")
    )
    q.add_argument("--action", choices=ACTIONS)
    q.add_argument("--member", help="one member's proposals")
    q.add_argument("--query", help="narrow the members by a visibility query")
    q.add_argument("--limit", type=int)
    for name, verb in (("approve", "approve (applies it once)"), ("reject", "reject")):
        q = asub.add_parser(name, parents=[common], help=f"{verb} one proposal")
        q.add_argument("proposal_id")
        q.add_argument(
            "--digest",
            required=True,
            help="the proposal's digest as `approvals list` shows it: the decision binds "
            "to that content and is refused if the proposal says anything else",
        )
        q.add_argument("--reason", required=True, help="why (recorded with who and when)")
    q = asub.add_parser("decide", parents=[common], help="decide every pending match of a policy")
    q.add_argument(
        "--policy",
        help='e.g. "action=grant_points,max_points=500"; keys: action, max_points, min_points, '
        "tier, member",
    )
    which = q.add_mutually_exclusive_group()
    which.add_argument("--approve", action="store_true")
    which.add_argument("--reject", action="store_true")
    q.add_argument("--reason")
    q.add_argument("--dry-run", action="store_true", help="only say what would be decided")
    q.add_argument(
        "--no-wait",
        action="store_true",
        help="start the decisions (a workflow on the server) and return",
    )
    q.add_argument(
        "--status",
        action="store_true",
        help="the latest bulk decisions, running ones as far as they are",
    )
    p.set_defaults(func=async_command(_approvals))

    p = sub.add_parser(
        "guardrails", parents=[common], help="the agent's guardrails, one set for every worker"
    )
    gsub = p.add_subparsers(dest="guardrails_command", metavar="ACTION", required=True)
    gsub.add_parser("show", parents=[common], help="the values in force")
    q = gsub.add_parser("set", parents=[common], help="change values (audited)")
    q.add_argument("values", nargs="*", metavar="NAME=VALUE")
    q.add_argument("--reset", action="append", metavar="NAME", help="back to the default")
    q.add_argument("--reason", required=True, help="why (recorded with who and when)")
    p.set_defaults(func=async_command(_guardrails))

    p = sub.add_parser("costs", parents=[common], help="agent tokens, calls and cost")
    p.add_argument("--query", help="narrow the members by a visibility query")
    p.set_defaults(func=async_command(_costs))

    p = sub.add_parser("secrets", parents=[common], help="secrets in the OS keyring")
    ssub = p.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)
    q = ssub.add_parser("set", parents=[common], help="store a secret read from stdin")
    q.add_argument("name", choices=secrets.KNOWN)
    q.add_argument(
        "--for",
        dest="endpoint",
        metavar="URL",
        help="openai: the only endpoint the key may go to (default: the configured "
        "base_url, else https://api.openai.com)",
    )
    q.add_argument("--reason", help="why (recorded in the audit log, with the name only)")
    q = ssub.add_parser("status", parents=[common], help="is it stored, and in which backend")
    q.add_argument("name", nargs="?", default="openai", choices=secrets.KNOWN)
    q = ssub.add_parser("delete", parents=[common], help="remove a secret")
    q.add_argument("name", choices=secrets.KNOWN)
    q.add_argument("--reason", help="why (recorded in the audit log)")
    p.set_defaults(func=secrets_command)

    p = sub.add_parser("model", parents=[common], help="which model the agent uses")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    msub.add_parser("show", parents=[common], help="the configured model")
    q = msub.add_parser("set", parents=[common], help="configure the model (never the key)")
    q.add_argument("--provider", choices=("offline", "openai"), required=True)
    q.add_argument("--model", help="model name, e.g. gpt-4o-mini")
    q.add_argument("--base-url", dest="base_url", help="an OpenAI-compatible endpoint")
    q.add_argument("--api", choices=("chat_completions", "responses"))
    q.add_argument("--input-usd-per-mtok", dest="input_usd_per_mtok", type=float)
    q.add_argument("--output-usd-per-mtok", dest="output_usd_per_mtok", type=float)
    q.add_argument("--reason", help="why (recorded in the audit log)")
    p.set_defaults(func=model_command)
