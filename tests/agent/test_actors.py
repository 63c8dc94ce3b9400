"""Issue 9: who decides. The decider is the OS account (not $USER, which anyone sets),
and the names the desk keeps for itself (`policy:…`, `guardrail`, `system:…`) are
refused from clients: by the member workflow itself, whatever client sends the update."""

from __future__ import annotations

import os
import pwd
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from runtime import approvals
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, ticket
from tests.kit.cli import cli
from workflows.actors import reserved_actor_problem
from workflows.member import Adjustment, Decision, MemberWorkflow
from workflows.proposals import AUTO_APPROVE_POLICY, EXPIRY

FORGED = (
    "policy:x",
    AUTO_APPROVE_POLICY,
    EXPIRY,
    "system:x",
    "guardrail",
    " Guardrail ",
    "POLICY:x",
    "policy : x",
    "\uff50\uff4f\uff4c\uff49\uff43\uff59\uff1ax",  # full-width "policy:x"
    "guard\u200brail",  # a zero-width space inside
)


def refusal(error: WorkflowUpdateFailedError) -> str:
    cause: Any = error.cause
    return str(getattr(cause, "message", None) or cause)


async def test_reserved_actors_are_refused_by_the_member_and_state_is_intact(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        proposals = await agents.proposals_made(member, 2)
        grant = next(p for p in proposals if p["action"] == "grant_points")
        before = await agents.state(member)
        handle = agents.handle(member)
        for actor in FORGED:
            decision = Decision(grant["id"], True, "forged", actor, digest=grant["digest"])
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(MemberWorkflow.decide, decision)  # type: ignore[arg-type]
            assert "reserved" in refusal(refused.value), actor
            adjustment = Adjustment(500, "forged goodwill", actor, f"forge-{actor!r}")
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(MemberWorkflow.adjust, adjustment)
            assert "reserved" in refusal(refused.value), actor
        after = await agents.state(member)
        assert after["points"] == before["points"] and after["ledger"] == before["ledger"]
        assert [p["status"] for p in after["proposals"]] == ["pending", "pending"]

        # the client refuses first, with the same reason
        with pytest.raises(approvals.ApprovalError, match="reserved"):
            await approvals.decide(
                agents.client,
                grant["id"],
                digest=grant["digest"],
                approve=True,
                reason="x",
                actor="policy:x",
            )
        # a person deciding by a bulk policy: the person is the actor, the policy its own field
        result = await handle.execute_update(
            MemberWorkflow.decide,  # type: ignore[arg-type]
            Decision(
                grant["id"],
                True,
                "by policy",
                "alice",
                policy="action=grant_points",
                digest=grant["digest"],
            ),
        )
        assert result.applied
        decided = next(
            p for p in (await agents.state(member))["proposals"] if p["id"] == grant["id"]
        )
        assert (decided["decided_by"], decided["policy"]) == ("alice", "action=grant_points")


async def test_the_decider_is_the_os_account_not_the_environment(
    agents: AgentDeployment,
) -> None:
    account = pwd.getpwuid(os.getuid()).pw_name
    impostor = {"USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory", "LNAME": "mallory"}
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        proposals = await agents.proposals_made(member, 2)
        for p in proposals:
            code, _, err = await cli(
                agents.deployment,
                "approvals",
                "approve",
                p["id"],
                "--digest",
                p["digest"],
                "--reason",
                "ok",
                env=impostor,
            )
            assert code == 0, err
        state = await agents.state(member)
    assert {p["decided_by"] for p in state["proposals"]} == {account}
    assert account != "mallory"


def test_person_names_pass() -> None:
    for name in ("alice", "root", "policy-team", "systems", "guardrails", "j.doe@example"):
        assert reserved_actor_problem(name) is None, name
