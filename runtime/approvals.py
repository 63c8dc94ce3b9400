"""The approval queue across all members: one visibility query, then one query per member.

Used by the CLI (`approvals`, `costs`) and the desktop's approvals panel. Members with
pending proposals carry the search attribute `LoyaltyPendingProposals > 0`, so the
queue never scans members that have nothing to decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from activities.decisions import send_decision
from recovery.found import if_found
from runtime import audit
from runtime.bulk_decisions import BulkReport as BulkReport
from runtime.bulk_decisions import bulk_decisions as bulk_decisions
from runtime.bulk_decisions import start_bulk
from runtime.connect import TASK_QUEUE
from runtime.deployment import os_account
from runtime.members import list_members
from workflows.actors import reserved_actor_problem
from workflows.agent_policy import ACTIONS
from workflows.audit import decision_entry
from workflows.bulk_decision import Decided
from workflows.ids import check_name
from workflows.member import Decision, DecisionResult, MemberWorkflow, member_workflow_id
from workflows.proposals import digest_of
from workflows.rules import TIER_NAMES
from workflows.visibility import all_of, literal

PENDING_QUERY = "LoyaltyPendingProposals > 0"
STATUSES = ("pending", "approved", "rejected", "expired", "all")
CONCURRENCY = 32
POLICY_KEYS = ("action", "max_points", "min_points", "tier", "member")


class ApprovalError(RuntimeError):
    """A decision or a lookup that failed; the message is one line for people."""


def operator() -> str:
    """Who decides from this machine: the OS account (see runtime.deployment.os_account)."""
    return os_account()


def checked_actor(actor: str | None) -> str:
    """The actor a decision names: the OS account unless given; never a reserved name."""
    who = actor if actor is not None else operator()
    problem = reserved_actor_problem(who)
    if problem:
        raise ApprovalError(problem)
    return who


@dataclass(frozen=True)
class Policy:
    """A bulk-decision policy, e.g. "action=grant_points,max_points=500"."""

    text: str
    action: str | None = None
    max_points: int | None = None
    min_points: int | None = None
    tier: str | None = None
    member: str | None = None

    def matches(self, proposal: dict[str, Any]) -> bool:
        if proposal.get("status") != "pending":
            return False
        if self.action and proposal["action"] != self.action:
            return False
        if self.member and proposal["member_id"] != self.member:
            return False
        if self.tier and proposal.get("member_tier") != self.tier:
            return False
        if self.max_points is not None or self.min_points is not None:
            points = proposal["arguments"].get("points")
            if not isinstance(points, int):
                return False  # amount bounds select grants only
            if self.max_points is not None and points > self.max_points:
                return False
            if self.min_points is not None and points < self.min_points:
                return False
        return True


def parse_policy(text: str) -> Policy:
    values: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ApprovalError(f"policy part {part!r} is not KEY=VALUE")
        if key not in POLICY_KEYS:
            raise ApprovalError(f"unknown policy key {key!r}; known: {', '.join(POLICY_KEYS)}")
        if key in values:
            raise ApprovalError(f"policy key {key!r} given twice")
        if key in ("max_points", "min_points"):
            if not value.isdigit():
                raise ApprovalError(f"{key} must be a whole number, got {value!r}")
            values[key] = int(value)
        elif key == "action":
            if value not in ACTIONS:
                raise ApprovalError(f"unknown action {value!r}; known: {', '.join(ACTIONS)}")
            values[key] = value
        elif key == "tier":
            if value not in TIER_NAMES:
                raise ApprovalError(f"unknown tier {value!r}; known: {', '.join(TIER_NAMES)}")
            values[key] = value
        else:
            values[key] = value
    if not values:
        raise ApprovalError("the policy is empty: say which proposals, e.g. action=grant_points")
    return Policy(text=text.strip(), **values)


# -- reading ------------------------------------------------------------------


async def _gather_limited(
    items: Iterable[Any], work: Any, concurrency: int = CONCURRENCY
) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> Any:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


async def member_proposals(client: Client, member_id: str) -> list[dict[str, Any]]:
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    proposals = await if_found(handle.query(MemberWorkflow.proposals))
    if proposals is None:
        raise ApprovalError(f"unknown member {member_id!r}")
    return proposals


def scoped(query: str | None, task_queue: str | None) -> str | None:
    """Only this desk's members: those on its task queue (a namespace may hold others)."""
    queue = f"TaskQueue = {literal(check_name(task_queue, 'task queue'))}" if task_queue else None
    return all_of(query, queue)


async def proposals(
    client: Client,
    *,
    status: str = "pending",
    action: str | None = None,
    member: str | None = None,
    query: str | None = None,
    limit: int | None = None,
    task_queue: str | None = None,
    unreachable: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Proposals across members, oldest first.

    Pending ones: members from the visibility query `LoyaltyPendingProposals > 0`.
    Other statuses live with members that may have nothing pending, so those list
    every member the (optional) `query` selects. Members that can't answer (no worker)
    are left out and named in `unreachable`.
    """
    if status not in STATUSES:
        raise ApprovalError(f"unknown status {status!r}; choose one of {', '.join(STATUSES)}")
    if action is not None and action not in ACTIONS:
        raise ApprovalError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if member is not None:
        rows = [{"member_id": member, "tier": None}]
    else:
        extra = all_of(PENDING_QUERY if status == "pending" else None, query)
        rows = await list_members(client, scoped(extra, task_queue), limit=None)

    async def read(row: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            found = await member_proposals(client, row["member_id"])
        except ApprovalError:
            if member is not None:
                raise
            return []  # closed since visibility listed it
        except RPCError:
            if member is not None:
                raise
            if unreachable is not None:
                unreachable.append(row["member_id"])
            return []
        return [{**p, "member_tier": row.get("tier")} for p in found]

    found = [p for group in await _gather_limited(rows, read) for p in group]
    found = [
        p
        for p in found
        if (status == "all" or p["status"] == status) and (action is None or p["action"] == action)
    ]
    found.sort(key=lambda p: (p["created_at"], p["id"]))
    return found[:limit] if limit else found


# -- deciding -----------------------------------------------------------------


def shown_digest(proposal: dict[str, Any]) -> str:
    """The digest of a proposal as a front end shows it: what a decision binds to."""
    return digest_of(proposal)


async def decide(
    client: Client,
    proposal_id: str,
    *,
    digest: str,
    approve: bool,
    reason: str,
    actor: str | None = None,
    policy: str | None = None,
    task_queue: str | None = None,
) -> DecisionResult:
    """Decide one proposal as the person saw it: `digest` is `shown_digest` of the
    record they were shown; the member refuses the decision if the proposal says
    anything else now, or does not exist."""
    if not reason or not reason.strip():
        raise ApprovalError("a reason is required (--reason)")
    decision = Decision(
        proposal_id, approve, reason.strip(), checked_actor(actor), policy, digest=digest
    )
    outcome = await send_decision(client, decision)
    if outcome.answered:
        entry = decision_entry(
            proposal_id,
            digest,
            approve,
            decision.actor,
            decision.reason,
            outcome.result.status if outcome.result else f"refused: {outcome.refused}",
            policy,
        )
        # `task_queue`: where the audit log runs if it must be started
        await audit.send(client, entry, task_queue=task_queue)
    if outcome.result is None:
        raise ApprovalError(outcome.refused or "refused")
    return outcome.result


async def decide_by_policy(
    client: Client,
    policy: Policy,
    *,
    approve: bool,
    reason: str,
    actor: str | None = None,
    dry_run: bool = False,
    task_queue: str | None = None,
    confirmed: list[dict[str, Any]] | None = None,
    wait: bool = True,
) -> BulkReport:
    """Every pending proposal the policy matches, decided the same way; one line per failure.

    The actor is the person (the OS account); the policy goes in each decision's `policy`.
    `confirmed`: the proposals a dry run counted and the person confirmed (`report.chosen`);
    exactly those are decided, each bound to the content counted (a proposal that
    arrived, or changed, since is left alone). The decisions are made by a workflow
    (BulkDecisionWorkflow) on the server, so a killed app or CLI leaves them going;
    `wait` False returns once it started (`report.bulk_ids`)."""
    if not reason or not reason.strip():
        raise ApprovalError("a reason is required (--reason)")
    who = checked_actor(actor)
    unreachable: list[str] = []
    if confirmed is not None:  # exactly what the person confirmed: nothing to count again
        chosen = [
            {"id": c["id"], "digest": c["digest"]}
            for c in confirmed
            if isinstance(c, dict) and isinstance(c.get("id"), str)
        ]
    else:
        queue = await proposals(
            client,
            status="pending",
            member=policy.member,
            task_queue=task_queue,
            unreachable=unreachable,
        )
        chosen = [{"id": p["id"], "digest": shown_digest(p)} for p in queue if policy.matches(p)]
    report = BulkReport(policy.text, approve, matched=len(chosen), chosen=chosen)
    report.failed += [
        {"proposal_id": f"{m}:*", "reason": "the member did not answer (is a worker running?)"}
        for m in unreachable
    ]
    if dry_run:
        report.decided = [{"proposal_id": p["id"], "status": "would be decided"} for p in chosen]
        return report

    handles = await start_bulk(
        client,
        report,
        reason=reason,
        actor=who,
        task_queue=task_queue or TASK_QUEUE,
        unreachable=[Decided(f["proposal_id"], "failed", f["reason"]) for f in report.failed],
    )
    report.bulk_ids = [h.id for h in handles]
    if not wait:
        return report
    report.failed = []
    for handle in handles:  # the parts run side by side on the server; read in order
        done = await handle.result()
        report.decided += [
            {"proposal_id": r.proposal_id, "status": r.status, "message": r.message}
            for r in done.results
            if r.status != "failed"
        ]
        report.failed += [{"proposal_id": f.proposal_id, "reason": f.message} for f in done.failed]
    report.decided.sort(key=lambda r: r["proposal_id"])
    report.failed.sort(key=lambda r: r["proposal_id"])
    return report


# -- costs ----------------------------------------------------------------------


async def costs(
    client: Client, query: str | None = None, *, task_queue: str | None = None
) -> dict[str, Any]:
    """Tokens, model calls and estimated cost: per member and per action type, summed.

    Asks every member the visibility query lists (all of the desk's running members
    by default).
    """
    rows = await list_members(client, scoped(query, task_queue), limit=None)

    async def read(row: dict[str, Any]) -> dict[str, Any] | None:
        handle = client.get_workflow_handle(member_workflow_id(row["member_id"]))
        try:
            return await handle.query(MemberWorkflow.agent)
        except RPCError:
            return None

    totals = {"model_calls": 0, "input_tokens": 0, "output_tokens": 0, "tokens": 0, "cost_usd": 0.0}
    by_action: dict[str, dict[str, Any]] = {}
    members: list[dict[str, Any]] = []
    states = await _gather_limited(rows, read)
    for state in states:
        if state is None:
            continue
        c = state["costs"]
        if not c["model_calls"] and not c["by_action"]:
            continue
        for key in totals:
            totals[key] += c[key]
        for action, row in c["by_action"].items():
            into = by_action.setdefault(action, {k: 0 for k in row})
            for k, v in row.items():
                into[k] = into.get(k, 0) + v
        members.append(
            {
                "member_id": state["member_id"],
                "model_calls": c["model_calls"],
                "tokens": c["tokens"],
                "cost_usd": c["cost_usd"],
                "pending_proposals": state["pending_proposals"],
                "model": state["agent"]["model"],
            }
        )
    totals["cost_usd"] = round(totals["cost_usd"], 6)
    for row in by_action.values():
        row["cost_usd"] = round(row.get("cost_usd", 0.0), 6)
    members.sort(key=lambda m: (-m["tokens"], m["member_id"]))
    return {
        "members_asked": len(rows),
        "members_unreachable": sum(1 for s in states if s is None),
        "members_with_agent_use": len(members),
        "totals": totals,
        "by_action": dict(sorted(by_action.items())),
        "members": members,
    }
