"""`replay-check` refuses a build that changes commands (non-determinism) even when its
numbers are right, and passes the code installed here on the same members."""

from __future__ import annotations

import json
import uuid

from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment
from tests.kit.cli import cli
from tests.kit.events import member_events
from tests.memberkit import start_member
from workflows.drill import UNPATCHED_COMMAND, drill_build_id


async def test_replay_check_flags_a_build_that_issues_other_commands(
    deployment: Deployment,
) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"n{tag}-{i}" for i in range(3)]
    candidate = drill_build_id("1.1", UNPATCHED_COMMAND)
    async with deployment.worker("1.0"):
        for member in members:
            await start_member(deployment.client, deployment.target, member, max_signals=4)
        for member in members:
            # several runs per member: the whole chain is replayed
            events = member_events(member, "a", 10, day=1)
            await send_member(deployment.client, deployment.target, member, events, bulk=False)
        await wait_applied(deployment.client, members)
        # the candidate's worker registers its version; members stay on 1.0
        async with deployment.worker("1.1", drill=UNPATCHED_COMMAND):
            pass

        code, out, err = await cli(deployment, "replay-check", candidate, "--json")
        assert code == 1 and out.startswith("{"), err
        verdict = json.loads(out)
        assert verdict["go"] is False and verdict["drill"] == UNPATCHED_COMMAND
        assert verdict["nondeterministic"] == len(members), out
        # its numbers are right: only the replay catches it
        assert verdict["state_differs"] == 0, out
        for result in verdict["results"]:
            assert result["runs"] >= 2
            assert "Nondeterminism" in result["nondeterminism"], result
            assert "\n" not in result["nondeterminism"]

        code, out, err = await cli(deployment, "replay-check", candidate)
        assert code == 1 and "NO-GO" in out and "Nondeterminism" in out, out + err

        code, out, err = await cli(deployment, "replay-check", "--json", "--progress")
        assert code == 0, out + err
        *progress, report = out.splitlines()
        # the window shows how far the check is: one line per member, then the report
        assert [json.loads(line) for line in progress] == [
            {"checked": n, "of": len(members)} for n in range(len(members) + 1)
        ]
        verdict = json.loads(report)
        assert verdict["go"] is True and verdict["nondeterministic"] == 0
        assert verdict["members"] == len(members)


async def test_the_command_drill_is_offered_by_the_worker_and_release_commands() -> None:
    for command in (["worker", "--help"], ["release", "start", "--help"]):
        code, out, err = await cli(None, *command)
        assert code == 0, err
        assert UNPATCHED_COMMAND in out, out
