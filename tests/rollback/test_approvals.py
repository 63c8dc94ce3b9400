"""A rollback repairs members whose agent proposals were approved before, during and
after the bad build (by a person, or by policy): the preview's "after", the repaired
state and the rules agree, each effect is delivered once, and replay-check says GO."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from recovery import repair
from runtime import deployment as releases
from runtime.replay_check import replay_check
from tests.agent.conftest import AgentDeployment
from tests.conftest import Deployment
from tests.kit.events import member_events
from tests.rollback.kit import STATUS, rollback, support_ticket, worker
from workflows.agent_policy import OUTBOX_KINDS
from workflows.drill import drill_build_id
from workflows.proposals import AUTO_APPROVE_POLICY
from workflows.rollback_messages import COMPARED_FIELDS
from workflows.rules import MemberBook, MemberSnapshot

BUG = "double-points"
CHARGE = "I was charged twice for my ride yesterday, please fix it"


class Members:
    """The members and every event each was sent, in order."""

    def __init__(self, agents: AgentDeployment, names: list[str]) -> None:
        self.agents, self.names = agents, names
        self.fed: dict[str, list[dict[str, Any]]] = {m: [] for m in names}
        # approved proposal id -> how many of its member's events came before the approval
        self.approved_after: dict[str, int] = {}

    async def send(self, member: str, events: list[dict[str, Any]]) -> None:
        self.fed[member].extend(events)
        await self.agents.feed(member, events)

    async def trips(self, phase: str, day: int) -> None:
        for member in self.names:
            await self.send(member, member_events(member, phase, 6, day))

    async def tickets(self, member: str, day: int, *texts: str) -> list[dict[str, Any]]:
        """Each ticket and the proposals the agent made for it (awaited one by one)."""
        made: list[dict[str, Any]] = []
        for text in texts:
            event = support_ticket(member, len(self.fed[member]), text, day)
            await self.send(member, [event])
            prefix = f"{member}:{event['event_id']}:"

            def answered(state: dict[str, Any], prefix: str = prefix) -> bool:
                made = any(p["id"].startswith(prefix) for p in state["proposals"])
                return made and state["agent"]["running"] is None

            state = await self.agents.wait_for(member, answered, timeout=60)
            mine = [p for p in state["proposals"] if p["id"].startswith(prefix)]
            for p in mine:
                if p["status"] == "approved":  # by policy, as the run ended
                    self.approved_after[p["id"]] = len(self.fed[member])
            made.extend(mine)
        return made

    async def approve(self, proposals: list[dict[str, Any]]) -> None:
        for proposal in (p for p in proposals if p["status"] == "pending"):
            result = await self.agents.decide(proposal["id"], True)
            assert result.applied, result.message
            self.approved_after[proposal["id"]] = len(self.fed[proposal["member_id"]])

    def by_rules(self, member: str, proposals: list[dict[str, Any]]) -> dict[str, Any]:
        """The member's events through the rules, each approved grant or tier applied
        where it came among them."""
        book = MemberBook(MemberSnapshot(member_id=member))
        approved = [p for p in proposals if p["status"] == "approved"]
        for n, raw in enumerate([*self.fed[member], None]):
            for p in approved:
                if self.approved_after[p["id"]] == n:
                    at = datetime.fromisoformat(p["decided_at"].replace("Z", "+00:00"))
                    book.apply_approved(p["action"], p["arguments"], p["id"], at, "rules")
            if raw is not None:
                book.apply(raw, build_id="rules")
        summary = book.summary()
        return {k: summary[k] for k in COMPARED_FIELDS}


async def test_rollback_keeps_approved_grants_and_tiers(deployment: Deployment) -> None:
    deployment.target.data_dir.mkdir(parents=True, exist_ok=True)
    agents = AgentDeployment(deployment, deployment.target.data_dir)
    client, target = agents.client, agents.deployment.target
    tag = uuid.uuid4().hex[:6]
    before, during, after, auto = (f"p{tag}-{k}" for k in ("before", "during", "after", "auto"))
    group = Members(agents, [before, during, after, auto])
    bad = drill_build_id("1.1", BUG)
    async with worker(agents, "1.0"):
        for member in group.names:
            await agents.start(member)
        await group.trips("a", day=1)
        await group.approve(await group.tickets(before, 3, CHARGE, STATUS))
        # the drill build's worker and the next approve small grants by policy
        await agents.configure(agent={"auto_approve_max_points": 100})
        async with worker(agents, "1.1", BUG):
            await releases.set_current(client, target.deployment, bad)
            await group.trips("b", day=5)
            await group.approve(await group.tickets(during, 7, CHARGE, STATUS))
            later = await group.tickets(after, 7, CHARGE, STATUS)
            made = [*later, *await group.tickets(auto, 7, CHARGE)]
            granted = [p for p in made if p["action"] == "grant_points"]
            assert [p["decided_by"] for p in granted] == [AUTO_APPROVE_POLICY] * 2
            async with worker(agents, "1.2"):
                await releases.set_current(client, target.deployment, "1.2")
                await group.approve(later)
                await group.trips("c", day=9)

                _, damage = await repair.find_damage(client, bad)
                assert sorted(d.member_id for d in damage) == sorted(group.names)
                previews = {d.member_id: await repair.preview_member(client, d) for d in damage}
                assert any(p.changes for p in previews.values()), "the drill damaged nobody"

                expected = {m: p.after for m, p in previews.items()}
                result = await rollback(
                    client, target.task_queue, bad, f"rollback-{tag}", expected=expected
                )
                assert result.state == "done"
                assert result.verified_ok == len(group.names), result.mismatches

                for member in group.names:
                    state = await agents.wait_for(
                        member, lambda s: s["agent"]["running"] is None and not s["agent"]["queued"]
                    )
                    live = {k: state[k] for k in COMPARED_FIELDS}
                    assert live == previews[member].after, member
                    if member in (before, auto):
                        # no tier grant lands again after the reset point: the rules with
                        # each approval where it first came give the repaired state (for
                        # the others the reset run applies the approval after the agent's
                        # re-run, behind the reapplied events, as the preview predicts)
                        assert live == group.by_rules(member, state["proposals"]), member
                    approved = [
                        p
                        for p in state["proposals"]
                        if p["status"] == "approved" and p["trigger"]["kind"] == "support_ticket"
                    ]
                    # a goodwill grant and a tier change each, by a person or by policy
                    actions = sorted(
                        p["action"] for p in approved if p["action"] != "message_member"
                    )
                    assert actions == (
                        ["grant_points"] if member == auto else ["change_tier", "grant_points"]
                    )
                    for proposal in approved:
                        posted = [e for e in state["ledger"] if e["cause"] == proposal["id"]]
                        rows = await agents.effects(proposal["id"])
                        if proposal["action"] == "message_member":
                            assert posted == [] and len(rows) == 1
                        else:  # applied exactly once, however often the reset replayed it
                            assert len(posted) == 1, (member, proposal["id"], posted)
                            assert len(rows) == (1 if proposal["action"] in OUTBOX_KINDS else 0)

                report = await replay_check(client, target.deployment, None)
                checked = {m.member_id: m for m in report.members}
                for member in group.names:
                    assert checked[member].go, checked[member]
