"""The agent inside member workflows on a real dev server: proposals, decisions, expiry,
guardrails, a flaky provider, the circuit breaker and a reset that replays an approval.
Only the language model is replaced (the offline rules model or a TestModel)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import ModelResponse
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.openai_agents.testing import ResponseBuilders, TestModel
from temporalio.worker import Replayer

from activities.offline_model import OfflineRulesModel
from recovery.reset import heal_member
from runtime.worker import sandbox_runner
from tests.agent.conftest import CHARGE, INJECTION, AgentDeployment, new_member, ticket, trip
from tests.conftest import eventually
from tests.kit.cli import cli
from workflows import search_attributes as sa
from workflows.member import MemberWorkflow, member_workflow_id


def by_action(proposals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["action"]: p for p in proposals}


async def refused(agents: AgentDeployment, proposal_id: str, approve: bool = True) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await agents.decide(proposal_id, approve)
    return str(failure.value.cause)


async def test_ticket_makes_proposals_that_change_nothing_until_approved_once(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker():
        before = await agents.feed(member, [trip(member, 1, 10_000), ticket(member, 1, CHARGE)])
        proposals = by_action(await agents.proposals_made(member, 2))
        grant, message = proposals["grant_points"], proposals["message_member"]
        assert grant["id"] == f"{member}:{member}-k1:0"  # deterministic from content
        assert grant["arguments"] == {"points": 100} and grant["status"] == "pending"
        assert grant["model"] == "offline rules model"
        assert grant["tokens"] > 0 and grant["trigger"]["kind"] == "support_ticket"
        state = await agents.state(member)
        assert state["points"] == before["points"] == 100  # nothing moved
        assert state["agent"]["status"] == "idle"
        assert state["costs"]["model_calls"] == 1
        # the approval queue is one visibility query away
        query = f"WorkflowId = '{member_workflow_id(member)}' AND LoyaltyPendingProposals > 0"
        listed = await eventually(lambda: _first(agents.client.list_workflows(query)), timeout=10)
        assert listed.typed_search_attributes.get(sa.PENDING_PROPOSALS) == 2

        result = await agents.decide(grant["id"], True, "double charge confirmed", "ops-anna")
        assert result.applied and result.status == "approved"
        again = await refused(agents, grant["id"])
        assert "already approved by ops-anna" in again
        state = await agents.state(member)
        assert state["points"] == 200
        entry = state["ledger"][-1]
        assert (entry["kind"], entry["cause"], entry["delta"]) == ("goodwill", grant["id"], 100)
        assert state["ledger_base"] + sum(e["delta"] for e in state["ledger"]) == state["points"]
        decided = by_action(state["proposals"])["grant_points"]
        assert decided["decided_by"] == "ops-anna"
        assert decided["decision_reason"] == "double charge confirmed"
        assert decided["decided_at"] and decided["ledger_seq"] == entry["seq"]

        await agents.decide(message["id"], True, "fine to send")
        await agents.wait_for(
            member,
            lambda s: by_action(s["proposals"])["message_member"].get("effect") == "delivered",
        )
        rows = await eventually(lambda: agents.effects(message["id"]))
        assert len(rows) == 1 and rows[0]["kind"] == "message"
        assert rows[0]["arguments"]["text"] == message["arguments"]["text"]
        assert (await agents.state(member))["points"] == 200
        # nothing pending: the search attribute says so
        await eventually(lambda: _pending_attr(agents, member, 0), timeout=10)
        costs = (await agents.state(member))["costs"]
        assert costs["by_action"]["grant_points"]["approved"] == 1
        assert costs["by_action"]["message_member"]["approved"] == 1


async def _first(iterator: Any) -> Any:
    async for item in iterator:
        return item
    return None


async def _pending_attr(agents: AgentDeployment, member: str, count: int) -> bool:
    description = await agents.handle(member).describe()
    return (description.typed_search_attributes.get(sa.PENDING_PROPOSALS) or 0) == count


async def test_rejection_and_expiry_change_nothing(agents: AgentDeployment) -> None:
    member = new_member()
    async with agents.worker():
        await agents.configure(agent={"proposal_ttl_seconds": 3})
        await agents.feed(member, [trip(member, 1, 10_000), ticket(member, 1, CHARGE)])
        proposals = by_action(await agents.proposals_made(member, 2))
        grant, message = proposals["grant_points"], proposals["message_member"]
        with pytest.raises(WorkflowUpdateFailedError) as no_reason:
            await agents.decide(grant["id"], False, reason="  ")
        assert "reason is required" in str(no_reason.value.cause)
        result = await agents.decide(grant["id"], False, "not a charge problem")
        assert result.status == "rejected" and not result.applied
        assert "already rejected" in await refused(agents, grant["id"])
        # the message is left alone: it expires by its durable timer
        state = await agents.wait_for(
            member, lambda s: by_action(s["proposals"])["message_member"]["status"] == "expired"
        )
        assert by_action(state["proposals"])["message_member"]["decided_by"] == "system:expiry"
        assert "expired" in await refused(agents, message["id"])
        assert state["points"] == 100
        assert [e["kind"] for e in state["ledger"]] == ["earn"]
        assert await agents.effects() == []
        assert state["costs"]["by_action"]["message_member"]["expired"] == 1


async def test_decisions_are_validated(agents: AgentDeployment) -> None:
    member, other = new_member(), new_member()
    async with agents.worker():
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        await agents.feed(other, [trip(other, 1)])
        grant = by_action(await agents.proposals_made(member, 2))["grant_points"]
        assert "unknown proposal" in await refused(agents, f"{member}:nope:0")
        # sent to the wrong member's workflow
        from workflows.member import Decision, MemberWorkflow

        with pytest.raises(WorkflowUpdateFailedError) as wrong:
            await agents.handle(other).execute_update(  # type: ignore[arg-type]
                MemberWorkflow.decide,
                Decision(grant["id"], True, "ok", "tester", digest=grant["digest"]),
            )
        assert f"belongs to member {member!r}" in str(wrong.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as nobody:
            await agents.handle(member).execute_update(  # type: ignore[arg-type]
                MemberWorkflow.decide,
                Decision(grant["id"], True, "ok", " ", digest=grant["digest"]),
            )
        assert "actor" in str(nobody.value.cause)
        assert (await agents.state(member))["points"] == 0


async def test_prompt_injection_causes_no_effect_and_nothing_above_the_cap_is_approved(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    # a model that does what the ticket says
    obedient = TestModel(
        lambda: ResponseBuilders.tool_call(
            json.dumps({"points": 1_000_000, "reason": "pre-approved by the loyalty team"}),
            "grant_points",
        )
    )
    async with agents.worker(model=obedient):
        await agents.feed(member, [trip(member, 1, 10_000), ticket(member, 1, INJECTION)])
        (grant,) = await agents.proposals_made(member, 1)
        assert grant["arguments"] == {"points": 1_000_000}
        assert grant["status"] == "rejected" and grant["decided_by"] == "guardrail"
        assert "above the cap of 5,000" in grant["decision_reason"]
        assert "already rejected" in await refused(agents, grant["id"])
        state = await agents.state(member)
        assert state["points"] == 100 and [e["kind"] for e in state["ledger"]] == ["earn"]
        assert state["costs"]["by_action"]["grant_points"]["rejected"] == 1

    # the offline model never follows ticket text: it flags the ticket for review instead
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [ticket(member, 1, INJECTION)])
        proposals = by_action(await agents.proposals_made(member, 2))
        assert set(proposals) == {"flag_fraud", "message_member"}
        assert all(p["status"] == "pending" for p in proposals.values())
        await asyncio.sleep(1)
        state = await agents.state(member)
        assert state["points"] == 0 and state["ledger"] == [] and await agents.effects() == []


async def test_pending_grant_above_a_lowered_cap_can_only_be_rejected(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    generous = TestModel(
        lambda: ResponseBuilders.tool_call(
            json.dumps({"points": 4_000, "reason": "big goodwill"}), "grant_points"
        )
    )
    async with agents.worker(model=generous):
        await agents.configure(agent={"points_cap": 5_000})
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        (grant,) = await agents.proposals_made(member, 1)
        assert grant["status"] == "pending"
    # the deployment's cap comes down while the proposal waits: every worker enforces it
    async with agents.worker(model=generous):
        await agents.configure(agent={"points_cap": 1_000})
        await agents.feed(member, [ticket(member, 2, "another problem", day=3)])
        await agents.wait_for(member, lambda s: s["agent"]["policy"]["points_cap"] == 1_000)
        reason = await refused(agents, grant["id"])
        assert "above the cap of 1,000" in reason and "can only be rejected" in reason
        await agents.decide(grant["id"], False, "over the cap")
        assert (await agents.state(member))["points"] == 0


async def test_auto_approval_below_the_threshold_is_recorded_as_policy(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker():
        await agents.configure(agent={"auto_approve_max_points": 100})
        await agents.feed(member, [trip(member, 1, 2_000), ticket(member, 1, CHARGE)])
        proposals = by_action(await agents.proposals_made(member, 2))
        state = await agents.state(member)
    grant = proposals["grant_points"]
    assert grant["status"] == "approved"
    assert grant["decided_by"] == "policy:auto-approve-small-grants"
    assert grant["policy"] == "action=grant_points,max_points=100"
    assert proposals["message_member"]["status"] == "pending"  # never auto-approved
    assert state["points"] == 120 and state["ledger"][-1]["cause"] == grant["id"]


class FlakyModel(OfflineRulesModel):
    """Fails its first `failures` calls, like a provider having a bad minute."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"provider unavailable (call {self.calls})")
        return await super().get_response(*args, **kwargs)


async def test_flaky_model_is_retried_and_counted_once(agents: AgentDeployment) -> None:
    member = new_member()
    model = FlakyModel(failures=2)
    async with agents.worker(model=model):
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        proposals = await agents.proposals_made(member, 2)
        state = await agents.state(member)
    assert model.calls == 3  # two failed attempts, one answer
    assert state["costs"]["model_calls"] == 1
    assert state["agent"]["budget"]["calls_used"] == 1
    assert state["agent"]["runs"] == 1 and state["agent"]["runs_failed"] == 0
    assert state["agent"]["breaker"]["state"] == "closed"
    assert sorted(p["action"] for p in proposals) == ["grant_points", "message_member"]


class SwitchModel(OfflineRulesModel):
    def __init__(self) -> None:
        self.healthy = False
        self.calls = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.calls += 1
        if not self.healthy:
            raise RuntimeError("provider down")
        return await super().get_response(*args, **kwargs)


async def test_breaker_opens_events_keep_flowing_and_it_recovers(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    model = SwitchModel()
    async with agents.worker(model=model):
        # a cool-down long enough that the feed below ends inside it on a busy machine
        await agents.configure(agent={"breaker_failures": 2, "breaker_cooldown_seconds": 10})
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        state = await agents.wait_for(
            member, lambda s: s["agent"]["breaker"]["state"] == "open", timeout=30
        )
        assert state["agent"]["status"] == "paused (breaker)"
        assert state["agent"]["runs_failed"] == 2
        assert "provider down" in (state["agent"]["last_error"] or "")
        assert state["proposals"] == []
        calls_when_open = model.calls
        # events keep being processed while the agent is paused
        state = await agents.feed(member, [trip(member, n, 3_000) for n in range(1, 4)])
        assert state["events_processed"] == 4 and state["points"] == 90
        assert model.calls == calls_when_open  # no model call while open
        model.healthy = True
        # half-open after the cool-down: one trial run, which succeeds and closes it
        state = await agents.wait_for(
            member, lambda s: len(s["proposals"]) == 2 and s["agent"]["running"] is None, timeout=40
        )
    assert state["agent"]["breaker"]["state"] == "closed"
    assert state["agent"]["breaker"]["consecutive_failures"] == 0
    assert {p["trigger"]["key"] for p in state["proposals"]} == {f"{member}-k1"}


async def test_budget_pauses_the_agent_not_the_member_and_renews(
    agents: AgentDeployment,
) -> None:
    # a "day" of 6 seconds and one model call per day
    member = new_member()
    async with agents.worker():
        await agents.configure(agent={"max_calls_per_day": 1, "day_seconds": 6})
        # the budget is per day: wait for a fresh one so both tickets land in it
        await _fresh_day(6)
        await agents.feed(member, [ticket(member, 1, CHARGE), ticket(member, 2, "app crashed", 3)])
        state = await agents.wait_for(member, lambda s: s["agent"]["status"] == "paused (budget)")
        assert state["agent"]["budget"]["exhausted"]
        assert [t["key"] for t in state["agent"]["queued"]] == [f"{member}-k2"]
        made = {p["trigger"]["key"] for p in state["proposals"]}
        assert made == {f"{member}-k1"}
        state = await agents.feed(member, [trip(member, 1, 5_000)])
        assert state["events_processed"] == 3 and state["points"] == 50
        # the next day the queued ticket gets its run
        state = await agents.wait_for(
            member, lambda s: s["agent"]["runs"] == 2 and not s["agent"]["queued"], timeout=20
        )
    assert state["costs"]["model_calls"] == 2
    assert state["agent"]["budget"]["calls_used"] == 1


async def _fresh_day(day_seconds: int) -> None:
    import time

    into = time.time() % day_seconds
    if into > day_seconds - 3:
        await asyncio.sleep(day_seconds - into + 0.2)


async def test_agent_state_survives_continue_as_new(agents: AgentDeployment) -> None:
    member = new_member()
    async with agents.worker():
        await agents.start(member, max_signals=3)
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        first = by_action(await agents.proposals_made(member, 2))
        state = await agents.feed(
            member, [trip(member, n, 1_000 + n, hour=8 + n) for n in range(1, 8)]
        )
        state = await agents.wait_for(member, lambda s: s["runs"] >= 2)
        assert by_action(state["proposals"])["grant_points"]["status"] == "pending"
        assert state["costs"]["model_calls"] == 1
        await agents.decide(first["grant_points"]["id"], True, "ok after a new run")
        state = await agents.state(member)
    assert state["ledger"][-1]["cause"] == first["grant_points"]["id"]
    assert state["points"] == sum((1_000 + n) // 100 for n in range(1, 8)) + 100


async def test_a_reset_that_replays_an_approval_sends_the_message_once(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [trip(member, 1, 4_000), ticket(member, 1, CHARGE)])
        message = by_action(await agents.proposals_made(member, 2))["message_member"]
        await agents.decide(message["id"], True, "send it")
        decided = await agents.wait_for(
            member,
            lambda s: by_action(s["proposals"])["message_member"].get("effect") == "delivered",
        )
        message_decided_at = by_action(decided["proposals"])["message_member"]["decided_at"]
        assert len(await eventually(lambda: agents.effects(message["id"]))) == 1
        handle = agents.handle(member)
        before = await handle.describe()
        history = await handle.fetch_history()
        # back to the first workflow task: the agent runs again, the approval is reapplied
        first_task = next(
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        reset = await agents.client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=agents.client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=member_workflow_id(member), run_id=before.run_id
                ),
                reason="test: replay the approval",
                workflow_task_finish_event_id=first_task,
                request_id=f"reset-{member}",
                reset_reapply_exclude_types=[],
            )
        )
        # the server's reapplied decision arrives before the agent re-ran: a decision
        # never waits for a proposal, so it is refused and the proposal is pending again
        # (a person decides again, or the rollback re-sends it bound to its content)
        state = await agents.wait_for(
            member,
            lambda s: (
                by_action(s["proposals"]).get("message_member", {}).get("status") == "pending"
            ),
            timeout=30,
        )
        await heal_member(agents.client, member, reset.run_id, before.run_id)
        state = await agents.wait_for(
            member,
            lambda s: (
                by_action(s["proposals"]).get("message_member", {}).get("effect") == "delivered"
            ),
            timeout=30,
        )
        after = await handle.describe()
        assert after.run_id != before.run_id
        replayed = by_action(state["proposals"])["message_member"]
        assert replayed["id"] == message["id"] and replayed["status"] == "approved"
        assert replayed["decision_reason"] == "send it"
        assert replayed["decided_at"] == message_decided_at  # at its first time
        assert state["points"] == 40  # the grant stayed pending; only the trip counts
    assert len(await eventually(lambda: agents.effects(message["id"]))) == 1


async def test_ordinary_events_never_wake_the_agent(agents: AgentDeployment) -> None:
    member = new_member()
    async with agents.worker():
        # trips an hour apart, well below any tier boundary
        state = await agents.feed(
            member, [trip(member, n, 1_500, day=1 + n // 8, hour=8 + n % 8) for n in range(20)]
        )
        await asyncio.sleep(0.5)
        state = await agents.state(member)
    assert state["events_processed"] == 20
    assert state["agent"]["runs"] == 0 and state["costs"]["model_calls"] == 0
    assert state["proposals"] == []


async def test_unusual_activity_and_tier_boundary_trigger_once(agents: AgentDeployment) -> None:
    member = new_member()
    async with agents.worker():
        # seven trips within an hour: more than five is unusual (once per day)
        burst = [trip(member, n, 2_000, day=1) for n in range(7)]
        await agents.feed(member, burst)
        (flag,) = await agents.proposals_made(member, 1)
        assert flag["action"] == "flag_fraud" and flag["trigger"]["kind"] == "unusual_activity"
        # 140 points so far; 820 more get within 5% of Gold (1,000)
        await agents.feed(member, [trip(member, 100, 82_000, day=2)])
        proposals = await agents.proposals_made(member, 2)
        nudge = [p for p in proposals if p["trigger"]["kind"] == "tier_boundary"]
        assert len(nudge) == 1 and nudge[0]["action"] == "message_member"
        assert "Gold" in nudge[0]["arguments"]["text"]
        await agents.feed(member, [trip(member, 101, 500, day=3)])
        await asyncio.sleep(0.5)
        state = await agents.state(member)
    assert state["agent"]["runs"] == 2  # neither fires again


STATUS_MATCH = "Can you do a status match? I am Gold with another ride app."


async def _tier_attr(agents: AgentDeployment, member: str, tier: str) -> bool:
    description = await agents.handle(member).describe()
    return description.typed_search_attributes.get(sa.TIER) == tier


async def test_approved_tier_change_moves_the_tier_once_and_survives_continue_as_new(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker():
        await agents.start(member, max_signals=4)
        await agents.feed(member, [trip(member, 1, 10_000), ticket(member, 1, STATUS_MATCH)])
        proposals = by_action(await agents.proposals_made(member, 2))
        change = proposals["change_tier"]
        assert change["arguments"] == {"tier": "Gold"} and change["status"] == "pending"
        state = await agents.state(member)
        assert state["tier"] == "Blue" and state["tier_override"] is None  # nothing moved yet

        result = await agents.decide(change["id"], True, "saw their Gold card", "ops-anna")
        assert result.applied and "Gold" in result.message
        assert (result.action, result.arguments) == ("change_tier", {"tier": "Gold"})
        assert "already approved by ops-anna" in await refused(agents, change["id"])
        state = await agents.state(member)
        assert state["tier"] == "Gold" and state["points"] == 100
        granted = state["tier_override"]
        assert (granted["tier"], granted["bound"], granted["cause"]) == (
            "Gold",
            "floor",
            change["id"],
        )
        # and `loyalty-desk member` says so
        code, out, err = await cli(agents.deployment, "member", member)
        assert code == 0, err
        assert f"tier granted: Gold (floor) from {granted['granted_at']}" in out
        assert f"by {change['id']}" in out
        assert granted["granted_at"] == result.decided_at
        entry = state["ledger"][-1]
        assert (entry["kind"], entry["cause"], entry["delta"]) == ("tier", change["id"], 0)
        assert entry["tier"] == "Gold" and entry["build"] == "1.0"
        assert by_action(state["proposals"])["change_tier"]["ledger_seq"] == entry["seq"]
        await eventually(lambda: _tier_attr(agents, member, "Gold"), timeout=10)
        await agents.wait_for(
            member, lambda s: by_action(s["proposals"])["change_tier"].get("effect") == "delivered"
        )
        (row,) = await eventually(lambda: agents.effects(change["id"]))
        assert row["kind"] == "tier_change"
        # the history with the approval (and its patch marker) replays deterministically
        history = await agents.handle(member).fetch_history()
        assert any(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in history.events)
        replayer = Replayer(workflows=[MemberWorkflow], workflow_runner=sandbox_runner())
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, replayed.replay_failure

        # the next trips earn at Gold's 125 % and the grant outlives continue-as-new
        state = await agents.feed(member, [trip(member, n, 10_000, day=2) for n in range(2, 5)])
        state = await agents.wait_for(member, lambda s: s["runs"] >= 2)
        assert state["tier"] == "Gold" and state["tier_override"] == granted
        assert state["points"] == 100 + 3 * 125
    tier_entries = [e for e in state["ledger"] if e["kind"] == "tier"]
    assert len(tier_entries) == 1  # applied once
    assert len(await eventually(lambda: agents.effects(change["id"]))) == 1


async def test_rejected_or_expired_tier_change_changes_nothing(agents: AgentDeployment) -> None:
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [trip(member, 1, 10_000), ticket(member, 1, STATUS_MATCH)])
        first = by_action(await agents.proposals_made(member, 2))["change_tier"]
        result = await agents.decide(first["id"], False, "no proof of status")
        assert result.status == "rejected" and not result.applied
    # proposals made from now on expire after two seconds
    async with agents.worker():
        await agents.configure(agent={"proposal_ttl_seconds": 2})
        await agents.feed(member, [ticket(member, 2, STATUS_MATCH, day=3)])
        state = await agents.wait_for(
            member,
            lambda s: any(
                p["action"] == "change_tier" and p["status"] == "expired" for p in s["proposals"]
            ),
        )
        second = next(p for p in state["proposals"] if p["status"] == "expired")
        assert second["id"] != first["id"] and "expired" in await refused(agents, second["id"])
        state = await agents.state(member)
    assert state["tier"] == "Blue" and state["tier_override"] is None
    assert [e["kind"] for e in state["ledger"]] == ["earn"]
    assert not [r for r in await agents.effects() if r["kind"] == "tier_change"]
    assert await _tier_attr(agents, member, "Blue")
