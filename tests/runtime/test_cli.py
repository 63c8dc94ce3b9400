"""The `loyalty-desk` command against a real dev server and worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Deployment
from tests.kit.cli import cli
from tests.memberkit import COMPARED
from workflows.contract import member_workflow_id
from workflows.member import MemberWorkflow
from workflows.rules import replay


async def test_feed_simulation_gives_every_member_the_rules_state(
    deployment: Deployment, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    async with deployment.worker("1.0"):
        code, stdout, err = await cli(
            deployment,
            "feed",
            "--simulate",
            "600",
            "--members",
            "12",
            "--seed",
            "3",
            "--out",
            str(out),
            "--wait",
            "--json",
        )
        assert code == 0, err
        report = json.loads(stdout)
        assert report["accepted"] == 600 and report["rejected"] == 0
        assert report["applied"]["events_processed"] == 600
        # the same file again: members recognise every event and nothing changes
        code, stdout, err = await cli(deployment, "feed", str(out), "--wait", "--json")
        assert code == 0, err
        assert json.loads(stdout)["applied"]["events_processed"] == 600
        events = [json.loads(line) for line in out.read_text().splitlines()]
        fed = sorted({e["member_id"] for e in events})
        assert len(fed) == 12
        for n, member in enumerate(fed):
            if n < 3:  # `member` as a person runs it; the rest straight from the workflow
                code, stdout, err = await cli(deployment, "member", member, "--json")
                assert code == 0, err
                state = json.loads(stdout)
            else:
                state = await deployment.client.get_workflow_handle(
                    member_workflow_id(member)
                ).query(MemberWorkflow.state)
            mine = [e for e in events if e["member_id"] == member]
            expected = replay(member, mine).summary()
            same = [k for k in COMPARED if k != "duplicates_ignored"]
            assert {k: state[k] for k in same} == {k: expected[k] for k in same}
            assert state["duplicates_ignored"] == len(mine)
        code, stdout, err = await cli(
            deployment, "members", "--json", "--query", "LoyaltyPoints >= 0"
        )
        assert code == 0, err
        rows = [r for r in json.loads(stdout) if r["member_id"].startswith("sim-")]
        assert len(rows) >= 12
        assert all(
            r["build_id"] == "1.0"
            for r in rows
            if r["member_id"] in {e["member_id"] for e in events}
        )


async def test_feed_reports_bad_lines_with_numbers_and_reasons(
    deployment: Deployment,
) -> None:
    member = "cli-bad-lines"
    good = {
        "type": "trip_completed",
        "event_id": "ok-1",
        "member_id": member,
        "occurred_at": "2026-02-01T10:00:00Z",
        "fare_cents": 1_234,
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "event_id": "neg", "fare_cents": -1}),
        "",
        json.dumps({**good, "type": "lottery_win", "event_id": "w"}),
        json.dumps(good),  # repeated in the file: counted once
    ]
    async with deployment.worker("1.0"):
        code, stdout, err = await cli(
            deployment, "feed", "-", "--wait", stdin="\n".join(lines) + "\n"
        )
    assert code == 0, err
    assert "accepted 1, rejected 3, 1 repeated ids" in stdout
    assert "line 2: invalid JSON" in stdout
    assert "line 3: fare_cents must be positive" in stdout
    assert "line 5: unknown event type 'lottery_win'" in stdout
    log = deployment.target.data_dir / "logs" / "feed-rejects.jsonl"
    assert len(log.read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["member", "nobody-here"], "unknown member 'nobody-here'"),
        (["feed", "/no/such/file.jsonl"], "no such file"),
        (["feed"], "give a JSON Lines FILE"),
    ],
)
async def test_errors_are_one_line_and_non_zero(
    deployment: Deployment, args: list[str], message: str
) -> None:
    code, _stdout, err = await cli(deployment, *args)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1


async def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = await cli(
        None, "members", "--address", "127.0.0.1:1", "--data-dir", str(tmp_path)
    )
    assert code == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in err
    code, _, err = await cli(
        None, "members", "--data-dir", str(tmp_path), env={"LOYALTY_DESK_ADDRESS": ""}
    )
    assert code == 1
    assert "no embedded server is running" in err


async def test_environment_variables_choose_the_server(deployment: Deployment) -> None:
    t = deployment.target
    async with deployment.worker("1.0"):
        code, stdout, err = await cli(
            None,
            "feed",
            "--simulate",
            "5",
            "--members",
            "1",
            "--prefix",
            "envvar",
            "--json",
            "--wait",
            env={
                "LOYALTY_DESK_ADDRESS": deployment.address,
                "LOYALTY_DESK_NAMESPACE": "default",
                "LOYALTY_DESK_TASK_QUEUE": t.task_queue,
                "LOYALTY_DESK_DEPLOYMENT": t.deployment,
                "LOYALTY_DESK_DATA_DIR": str(t.data_dir),
            },
        )
    assert code == 0, err
    assert json.loads(stdout)["applied"]["events_processed"] == 5
