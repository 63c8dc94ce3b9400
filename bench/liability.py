"""The liability report at scale: `runtime.liability.report` over N members (100,000 by
default) on one embedded server, against a bare walk of the same visibility pages in
the same process (the baseline: what reading the rows costs before any sum).

Members are seeded as bench.seed does (signal-with-start with the search attributes a
member publishes, on a queue no worker polls): the report reads exactly those search
attributes through the same visibility query as for real members. The sums are checked
against what the seed published.

    python -m bench.liability [--members 100000]
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Timer, embedded, emit, machine
from bench.seed import populate, published_as, wait_listed
from runtime import liability
from runtime.members import member_query
from workflows.book import INACTIVITY_DAYS

NOW = datetime(2027, 2, 15, tzinfo=UTC)  # the seed's deadlines fall 14 to 83 days on


def expected(members: int) -> liability.Liability:
    total = liability.Liability()
    for n in range(members):
        _, points, at = published_as(n)
        total.members += 1
        total.points += points
        left = at + timedelta(days=INACTIVITY_DAYS) - NOW
        for days in liability.HORIZONS:
            if left <= timedelta(days=days):
                total.expiring[days] += points
    return total


def updates_to(updates: list[tuple[int, int | None]]) -> liability.Progress:
    return lambda read, total: updates.append((read, total))


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "liability", "machine": machine()}
    async with embedded(worker=False) as bench:
        with Timer() as seeding:
            result["members_started_per_s"] = round(await populate(bench, args.members), 1)
            await wait_listed(bench, args.members, timeout=1_800)
        result["seed_s"] = round(seeding.seconds, 1)
        query = member_query(None)
        walks, reports = [], []
        for _ in range(args.rounds):
            with Timer() as walk:
                rows = 0
                async for _ in bench.client.list_workflows(query, page_size=liability.PAGE):
                    rows += 1
            walks.append(walk.seconds)
            updates: list[tuple[int, int | None]] = []
            with Timer() as timed:
                report = await liability.report(
                    bench.client, None, now=NOW, progress=updates_to(updates)
                )
            reports.append(timed.seconds)
        want = expected(args.members)
        result.update(
            members=args.members,
            rows_walked=rows,
            walk_s=round(min(walks), 2),
            report_s=round(min(reports), 2),
            report_vs_walk=round(min(reports) / min(walks), 3),
            members_per_s=round(args.members / min(reports)),
            progress_updates=len(updates),
            first_progress=list(updates[0]),
            within_a_minute=min(reports) <= 60,
            sums_correct=(
                report.total.members == want.members
                and report.total.points == want.points
                and report.total.expiring == want.expiring
            ),
            total=report.total.row(),
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="the best of N reads")
    emit(asyncio.run(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
