"""Issue 9: an event id reused with other content is a conflict, not a harmless repeat;
and every rejection is counted, also those a member no longer keeps (it keeps 50)."""

from __future__ import annotations

import json
from typing import Any

from runtime.feed import check, rejects_log
from tests.conftest import Deployment
from tests.kit.cli import cli
from tests.memberkit import trip


async def test_a_reused_event_id_with_other_content_is_a_conflict_with_both_lines(
    deployment: Deployment,
) -> None:
    member = "conflict-a"
    first = trip(member, 1, fare=2_500, event_id="e-1")
    lines = [
        json.dumps(first),
        json.dumps(trip(member, 2, event_id="e-2")),
        json.dumps(first),  # the same event sent again: a repeat, harmless
        json.dumps({**first, "fare_cents": 250_000}),  # the same id, another trip
    ]
    async with deployment.worker("1.0"):
        code, out, err = await cli(
            deployment, "feed", "-", "--wait", "--json", stdin="\n".join(lines) + "\n"
        )
        assert code == 0, err
        code, shown, err = await cli(deployment, "member", member, "--json")
        assert code == 0, err
    report = json.loads(out)
    assert (report["accepted"], report["duplicates_in_input"], report["rejected"]) == (2, 1, 1)
    (conflict,) = report["rejects"]
    assert (conflict["line"], conflict["first_line"], conflict["event_id"]) == (4, 1, "e-1")
    assert "line 1" in conflict["reason"] and "conflict" in conflict["reason"]
    logged = [json.loads(line) for line in rejects_log(deployment.target.data_dir).open()]
    assert [(r["line"], r["first_line"], r["event_id"]) for r in logged] == [(4, 1, "e-1")]
    # the member applied the first trip only: the conflicting fare earned nothing
    state = json.loads(shown)
    assert state["events_processed"] == 2
    assert state["points"] < 1_000


def test_a_simulated_or_generated_feed_is_checked_the_same_way() -> None:
    events: list[Any] = [trip("m", 1, event_id="x"), trip("m", 2, event_id="x")]
    batch = check(enumerate(events, start=1))
    assert batch.report.accepted == 1 and batch.report.duplicates == 0
    (reject,) = batch.report.rejects
    assert (reject.line, reject.first_line) == (2, 1)
    # the same id for two members is two events, not a conflict
    batch = check(enumerate([trip("m", 1, event_id="x"), trip("n", 1, event_id="x")], start=1))
    assert batch.report.accepted == 2 and not batch.report.rejects


async def test_every_rejection_is_counted_beyond_the_50_a_member_keeps(
    deployment: Deployment,
) -> None:
    member = "many-rejects"
    lines = [json.dumps(trip(member, n, fare=-n, event_id=f"neg-{n}")) for n in range(1, 61)]
    async with deployment.worker("1.0"):
        code, out, err = await cli(deployment, "feed", "-", "--wait", stdin="\n".join(lines))
        assert code == 0, err
        code, shown, err = await cli(deployment, "member", member)
        assert code == 0, err
    log = rejects_log(deployment.target.data_dir)
    # the feed says how many, lists some, and names the file that has them all
    assert "rejected 60" in out
    assert f"and 40 more; all 60 rejections of this feed are in {log}" in out
    logged = [json.loads(line) for line in log.open()]
    assert len(logged) == 60 and {r["of"] for r in logged} == {60}
    assert [r["n"] for r in logged] == list(range(1, 61))
    # the member keeps its last 50 and counts all 60
    assert "rejections: 60 in all; the member keeps the last 50, the last 10 shown" in shown
    assert "neg-60" in shown and "neg-50" not in shown
