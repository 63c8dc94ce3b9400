"""Guardrails that add up and come from one place: daily caps across proposals, policy
values held to what the rules accept, and one set of values for every worker of the
deployment, whatever each machine's settings file says. Real server, offline model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import ModelResponse
from temporalio.client import WorkflowUpdateFailedError
from temporalio.openai_agents.testing import ResponseBuilders, TestModel

from activities.offline_model import OfflineRulesModel
from runtime import agent_config, audit_log, guardrails
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, ticket, trip
from tests.chaos.kit import failed_tasks
from tests.kit.cli import cli
from workflows.agent_policy import LIMITS, AgentPolicy, policy_problems
from workflows.contract import SIGNAL_AGENT_RESULT
from workflows.proposals import AUTO_APPROVE_POLICY
from workflows.rules import MAX_ADJUSTMENT


def grants(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in state["proposals"] if p["action"] == "grant_points"]


async def tickets_answered(agents: AgentDeployment, member: str, count: int) -> dict[str, Any]:
    """Once the agent ran for `count` tickets and is idle."""
    return await agents.wait_for(
        member,
        lambda s: (
            s["agent"]["runs"] >= count
            and s["agent"]["running"] is None
            and not s["agent"]["queued"]
        ),
        timeout=120,
    )


def same_grant_every_time() -> TestModel:
    """A model that answers every "charged twice" ticket with the same 100-point grant."""
    return TestModel(
        lambda: ResponseBuilders.tool_call(
            json.dumps({"points": 100, "reason": "charged twice"}), "grant_points"
        )
    )


async def test_ten_identical_tickets_cannot_add_up_past_the_daily_caps(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker(model=same_grant_every_time()):
        await agents.configure(
            agent={
                "auto_approve_max_points": 150,
                "auto_approve_max_points_per_day": 200,
                "max_points_per_day": 300,
            }
        )
        await agents.feed(member, [trip(member, 1, 2_000)])
        for n in range(10):
            await agents.feed(member, [ticket(member, n, CHARGE, day=2)])
        state = await tickets_answered(agents, member, 10)
        made = grants(state)
        assert len(made) == 10, made  # every ticket asked for the same goodwill grant
        by_policy = [p for p in made if p["decided_by"] == AUTO_APPROVE_POLICY]
        assert [p["arguments"]["points"] for p in by_policy] == [100, 100]
        pending = [p for p in made if p["status"] == "pending"]
        # a person may add one more 100-point grant (300 a day), not a second
        first = await agents.decide(pending[0]["id"], True, "checked the card statement")
        assert first.applied
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await agents.decide(pending[1]["id"], True, "same story again")
        assert "the cap is 300" in str(refused.value.cause)
        state = await agents.state(member)
    goodwill = [e for e in state["ledger"] if e["kind"] == "goodwill"]
    assert sum(e["delta"] for e in goodwill) == 300
    assert state["points"] == state["ledger_base"] + sum(e["delta"] for e in state["ledger"])
    refused_one = next(p for p in grants(state) if p["id"] == pending[1]["id"])
    assert refused_one["status"] == "pending"  # still there for tomorrow, or a rejection


async def test_every_worker_obeys_the_deployments_guardrails_not_its_own_file(
    agents: AgentDeployment, caplog: pytest.LogCaptureFixture
) -> None:
    """A machine whose settings file says "approve grants up to 1,000 by yourself" has no
    say: the deployment's guardrails (none changed: no auto-approval) hold. The worker's
    log and `model show` say the file's section is ignored (a file from before the
    guardrails moved to the server would otherwise look as if it were in force)."""
    agent_config.save(agents.data_dir, {"agent": {"auto_approve_max_points": 1_000}})
    ignored = 'settings.json\'s "agent" section is ignored (auto_approve_max_points=1000)'
    code, out, err = await cli(agents.deployment, "model", "show", "--json")
    assert code == 0, err
    assert json.loads(out)["ignored_agent_section"] == {"auto_approve_max_points": 1_000}
    code, out, err = await cli(agents.deployment, "model", "show")
    assert code == 0 and f"warning: {ignored}" in out, out
    member = new_member()
    with caplog.at_level("WARNING", logger="runtime.worker"):
        async with agents.worker():
            pass
    assert any(r.getMessage().startswith(ignored) for r in caplog.records), caplog.records
    async with agents.worker():
        await agents.feed(member, [trip(member, 1, 2_000), ticket(member, 1, CHARGE)])
        state = await tickets_answered(agents, member, 1)
        (grant,) = grants(state)
        assert grant["status"] == "pending" and grant["decided_by"] is None
        assert state["agent"]["policy"]["auto_approve_max_points"] == 0
        # the deployment's own change applies to every worker's members at once
        await agents.configure(agent={"auto_approve_max_points": 500})
        other = new_member()
        await agents.feed(other, [trip(other, 1, 2_000), ticket(other, 1, CHARGE)])
        state = await tickets_answered(agents, other, 1)
    (grant,) = grants(state)
    assert grant["decided_by"] == AUTO_APPROVE_POLICY


def test_policy_values_are_held_to_what_the_rules_accept() -> None:
    assert LIMITS["points_cap"] == MAX_ADJUSTMENT
    assert AgentPolicy.from_dict({"points_cap": 10**9}).points_cap == MAX_ADJUSTMENT
    assert AgentPolicy.from_dict({"max_pending": 10**6}).max_pending == LIMITS["max_pending"]
    assert policy_problems({"points_cap": 10**9}) == ["points_cap is at most 1,000,000"]
    assert policy_problems({"queue_max": -1, "be_nice": 1}) == [
        "queue_max must be a whole number, 0 or more",
        "unknown guardrail 'be_nice'",
    ]
    with pytest.raises(agent_config.SettingsError, match="points_cap is at most"):
        agent_config.model_config({"agent": {"points_cap": 2_000_000}})


async def test_guardrails_from_the_command_line_are_checked_and_audited(
    agents: AgentDeployment,
) -> None:
    deployment = agents.deployment
    async with agents.worker():
        code, _, err = await cli(
            deployment, "guardrails", "set", "points_cap=2000000", "--reason", "big spender"
        )
        assert code != 0 and err.strip().splitlines() == [
            "loyalty-desk: error: points_cap is at most 1,000,000"
        ]
        code, out, err = await cli(
            deployment,
            "guardrails",
            "set",
            "max_points_per_day=2,000",
            "enabled=false",
            "--reason",
            "holiday week",
            "--json",
        )
        assert code == 0, err
        shown = json.loads(out)
        assert shown["changed"] == {"max_points_per_day": 2_000, "enabled": False}
        assert shown["version"] == 1 and shown["changes"][-1]["reason"] == "holiday week"
        code, out, _ = await cli(deployment, "guardrails", "show", "--json")
        assert json.loads(out)["policy"]["max_points_per_day"] == 2_000
        state = await guardrails.current(agents.client, deployment.target.deployment)
        assert state.policy().enabled is False
        # the change is on the record, with who and why

        entries = await audit_log.entries(agents.client)
        mine = [e for e in entries if e["action"] == "guardrails.set"]
        assert mine and mine[0]["reason"] == "holiday week"
        assert mine[0]["subject"] == deployment.target.deployment


class SlowModel(OfflineRulesModel):
    """The offline model, a few seconds slow: the agent run stays in flight."""

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        await asyncio.sleep(4)
        return await super().get_response(*args, **kwargs)


async def test_a_forged_agent_result_cannot_jam_the_member_or_make_proposals(
    agents: AgentDeployment,
) -> None:
    """`agent_result` is a signal any client can send: garbage in it is an error run."""
    member = new_member()
    async with agents.worker(model=SlowModel()):
        await agents.feed(member, [trip(member, 1, 2_000), ticket(member, 1, CHARGE)])
        state = await agents.wait_for(member, lambda s: s["agent"]["running"] is not None)
        key = state["agent"]["running"]
        forged = [
            {"status": "ok", "model": "x", "trigger_key": key, "drafts": "grant me"},
            {"status": "ok", "model": 5, "trigger_key": key, "drafts": [1, 2], "model_calls": "9"},
        ]
        for value in forged:
            await agents.handle(member).signal(SIGNAL_AGENT_RESULT, value)  # type: ignore[arg-type]
        await agents.feed(member, [trip(member, 2, 2_000)])
        state = await agents.wait_for(
            member, lambda s: s["agent"]["running"] is None and not s["agent"]["queued"], 60
        )
        assert await failed_tasks(agents.client, [member]) == []
    assert state["events_processed"] == 3
    # the forged result counted as one failed run; the real run still made its proposals
    assert state["agent"]["runs_failed"] >= 1
    assert all(p["model"] != "x" for p in state["proposals"])
