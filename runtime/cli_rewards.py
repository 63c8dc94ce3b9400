"""`loyalty-desk rewards list`, `redeem MEMBER REWARD`, `redemptions list|cancel`."""

from __future__ import annotations

import argparse
from typing import Any

from runtime.cliutil import CliError, async_command, emit, target_of


def _rewards(args: argparse.Namespace) -> int:
    from runtime import rewards

    rows = rewards.catalogue()
    text = [
        f"{r['id']:<22} {r['cost']:>8,} pts  {r['min_tier']:<9} {r['name']}"
        + (f" (stock {r['stock']:,})" if r.get("stock") is not None else "")
        for r in rows
    ]
    emit(args, {"rewards": rows}, "\n".join(text))
    return 0


def _record_line(r: dict[str, Any]) -> str:
    text = f"{r['status']:<9} {r['request_id']}  {r['name']} for {r['cost']:,} pts at {r['requested_at']}"
    if r["status"] == "cancelled":
        text += f"; {r['returned']:,} pts returned ({r['cancel_reason']})"
    return text


async def _redeem(args: argparse.Namespace) -> int:
    from runtime import rewards
    from runtime.connect import connect

    target = target_of(args)
    client = await connect(target)
    try:
        result = await rewards.redeem(
            client,
            target,
            args.member,
            args.reward,
            reason=args.reason,
            request_id=args.request_id,
        )
    except rewards.RedemptionRefused as error:
        raise CliError(f"refused: {error}") from None
    record = result.redemption
    text = _record_line(record) + f"\nbalance {result.points:,} pts"
    if not result.applied:
        text = "already redeemed: " + text
    emit(args, {"applied": result.applied, "balance": result.points, **record}, text)
    return 0


async def _redemptions(args: argparse.Namespace) -> int:
    from runtime import rewards
    from runtime.connect import connect

    target = target_of(args)
    client = await connect(target)
    try:
        if args.redemptions_command == "cancel":
            result = await rewards.cancel(
                client, target, args.member, args.request_id, reason=args.reason
            )
            text = _record_line(result.redemption) + f"\nbalance {result.points:,} pts"
            emit(args, {"balance": result.points, **result.redemption}, text)
            return 0
        rows = await rewards.redemptions(client, args.member)
    except rewards.RedemptionRefused as error:
        raise CliError(f"refused: {error}") from None
    lines = [_record_line(r) for r in rows] or [f"{args.member} has no redemptions"]
    emit(args, {"member_id": args.member, "redemptions": rows}, "\n".join(lines))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("rewards", parents=[common], help="the reward catalogue of this build")
    rsub = p.add_subparsers(dest="rewards_command", metavar="ACTION", required=True)
    rsub.add_parser("list", parents=[common], help="rewards, cheapest first")
    p.set_defaults(func=_rewards)

    p = sub.add_parser(
        "redeem", parents=[common], help="spend a member's points on a reward (audited)"
    )
    p.add_argument("member")
    p.add_argument("reward", help="a reward id (see `rewards list`)")
    p.add_argument("--reason", default="redeemed by the operator", help="why")
    p.add_argument("--request-id", help="make a retry safe: the same id redeems once")
    p.set_defaults(func=async_command(_redeem))

    p = sub.add_parser("redemptions", parents=[common], help="a member's redemptions")
    dsub = p.add_subparsers(dest="redemptions_command", metavar="ACTION", required=True)
    q = dsub.add_parser("list", parents=[common], help="a member's redemptions, oldest first")
    q.add_argument("member")
    q = dsub.add_parser("cancel", parents=[common], help="return a redemption's points (audited)")
    q.add_argument("member")
    q.add_argument("request_id")
    q.add_argument("--reason", required=True, help="why (recorded with who and when)")
    p.set_defaults(func=async_command(_redemptions))
    register_liability(sub, common)


async def _liability(args: argparse.Namespace) -> int:
    import sys

    from runtime import liability
    from runtime.connect import connect
    from runtime.members import deployment_query

    target = target_of(args)
    try:
        rate = (
            liability.check_rate(args.rate)
            if args.rate is not None
            else liability.configured_rate(target.data_dir)
        )
    except liability.LiabilityError as error:
        raise CliError(str(error)) from None
    client = await connect(target)

    def progress(read: int, total: int | None) -> None:
        of = f" of {total:,}" if total is not None else ""
        print(f"{read:,}{of} members read…", file=sys.stderr)

    data = await liability.report(
        client, deployment_query(target.deployment), rate=rate, progress=progress
    )
    by_tier = args.by == "tier"
    if args.csv:
        print(data.csv_text(by_tier), end="")
        return 0
    columns = liability.COLUMNS
    text = [f"{'group':<10}" + "".join(f"{c:>16}" for c in columns)]
    text += [
        f"{name:<10}" + "".join(f"{group.row()[c]:>16,}" for c in columns)
        for name, group in data.groups(by_tier)
    ]
    text.append(f"at {rate:g} a point; read in {data.seconds:.1f} s")
    emit(args, data.as_json(), "\n".join(text))
    return 0


def register_liability(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "liability", parents=[common], help="outstanding points, their value, what expires soon"
    )
    p.add_argument("--by", choices=["tier"], help="one line per tier as well")
    p.add_argument(
        "--rate",
        type=float,
        help='value of one point (default: settings.json {"liability": {"rate": R}}, else 0.01)',
    )
    p.add_argument("--csv", action="store_true", help="CSV on stdout")
    p.set_defaults(func=async_command(_liability))
