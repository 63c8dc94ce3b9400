"""The drill from the command line: release, preview, execute, status, audit, replay-check
(a worker SIGKILLed in the middle of a rollback: tests/rollback/test_paged.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from runtime import deployment as releases
from runtime.feed import wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.rollback.kit import BAD, assert_repaired, damaged_members
from workflows.rollback_messages import COMPARED_FIELDS


async def test_drill_preview_execute_status_audit_from_the_cli(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"c{tag}-{i}" for i in range(4)]
    fed: dict[str, list] = {m: [] for m in members}
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        code, out, err = await cli(
            deployment, "release", "set-current", "1.0", "--reason", "first release", "--json"
        )
        assert code == 0, err
        await damaged_members(deployment, members, fed)

        async def listed() -> dict[str, Any] | None:
            code, out, err = await cli(deployment, "release", "list", "--json")
            assert code == 0, err
            found = {v["build_id"]: v for v in json.loads(out)["versions"]}
            # visibility follows the members' moves to the fixed build a moment later
            return found if found["2.1"]["members"] == len(members) else None

        versions = await eventually(listed, timeout=20, interval=0.5)
        assert versions[BAD]["drill"] == "zero-on-trip"
        assert versions["2.1"]["status"] == "current"
        assert versions["2.1"]["members"] == len(members)

        code, out, err = await cli(deployment, "replay-check", BAD, "--json")
        assert code == 1 and out.startswith("{"), err  # the drill's numbers differ: NO-GO
        verdict = json.loads(out)
        assert verdict.get("go") is False and verdict["state_differs"] >= 1, out
        # (its numbers can also move agent triggers, so some members may replay
        # non-deterministically too; the state comparison flags every changed member)

        code, out, err = await cli(deployment, "rollback", BAD, "--dry-run", "--json")
        assert code == 0, err
        preview = json.loads(out)
        assert preview["affected"] == len(members)
        assert preview["changing"] >= 1
        moved = sum(abs(r["after"]["points"] - r["before"]["points"]) for r in preview["members"])
        t = preview["totals"]
        assert moved > 0 and t["points_moved"] == moved
        assert t["value_moved"] == round(moved * t["rate"], 2)
        assert t["liability_change"] == round(
            (t["points_after"] - t["points_before"]) * t["rate"], 2
        )
        before = await wait_applied(deployment.client, members)
        assert {m: {k: s[k] for k in COMPARED_FIELDS} for m, s in before.items()} == {
            r["member_id"]: r["before"] for r in preview["members"]
        }

        code, out, err = await cli(deployment, "rollback", BAD, "--execute")
        assert code == 1 and "needs --reason" in err

        code, out, err = await cli(
            deployment,
            "rollback",
            BAD,
            "--execute",
            "--reason",
            "points zeroed on trips",
            "--json",
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["counts"] == {"reset": len(members)}
        assert result["verified_ok"] == len(members) and result["mismatches"] == []

        states = await wait_applied(deployment.client, members)
        assert_repaired(states, fed)
        assert {m: {k: s[k] for k in COMPARED_FIELDS} for m, s in states.items()} == {
            r["member_id"]: r["after"] for r in preview["members"]
        }

        code, out, err = await cli(deployment, "rollback", BAD, "--status", "--json")
        assert code == 0, err
        assert json.loads(out)["state"] == "done"

        code, out, err = await cli(deployment, "replay-check", "--json")
        assert code == 0, out  # the installed code agrees with every repaired member

        code, out, err = await cli(deployment, "audit", "--json")
        assert code == 0, err
        actions = [(e["action"], e["subject"]) for e in json.loads(out)]
        assert ("release.set-current", "1.0") in actions
        assert ("rollback.start", BAD) in actions
        assert ("rollback.reset", BAD) in actions
        entry = next(e for e in json.loads(out) if e["action"] == "rollback.start")
        assert entry["reason"] == "points zeroed on trips" and "@" in entry["actor"]


async def test_a_mismatch_after_the_repair_fails_the_command_naming_member_and_field(
    deployment: Deployment,
) -> None:
    """The members move, after the reset, to a build that is broken too: verification
    compares what that build applied with the rules, and the command says so and fails."""
    tag = uuid.uuid4().hex[:6]
    members = [f"x{tag}-{i}" for i in range(2)]
    fed: dict[str, list] = {m: [] for m in members}
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        await releases.set_current(deployment.client, deployment.target.deployment, "1.0")
        await damaged_members(deployment, members, fed)
        async with deployment.worker("2.2", drill="double-points"):
            await releases.set_current(
                deployment.client, deployment.target.deployment, "2.2+drill-double-points"
            )
            code, out, err = await cli(
                deployment, "rollback", BAD, "--execute", "--reason", "zeroed trips"
            )
    assert code == 1, (out, err)
    for member in members:
        line = next(x for x in out.splitlines() if x.strip().startswith(f"MISMATCH {member}:"))
        # the member, the field and both values
        assert "state differs from its history: points " in line and " != " in line, line
    assert f"mismatches {len(members)}" in out
