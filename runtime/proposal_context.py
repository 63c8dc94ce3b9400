"""What a person reads before deciding one proposal: the proposal whole, what triggered
it, the member's tier and balance, and the member's earlier decisions.

The proposal itself comes from the queue the caller already holds; the member part is
one `state` query to the member's workflow (the workflow code is imported by that
call, so the window can use `from_record` without loading it). A member that does not answer (no worker,
the server away) leaves the proposal readable and says so in `member_problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

# A query to a member with no worker polling waits for one: a person waits less.
QUERY_TIMEOUT = timedelta(seconds=5)
HISTORY_KEEP = 20  # the most recent decisions shown


@dataclass(frozen=True)
class Trigger:
    """The event or ticket the agent answered with the proposal."""

    kind: str
    key: str
    event_id: str
    detail: str | None = None  # the ticket's text (clipped), when the record has it


@dataclass(frozen=True)
class PastDecision:
    proposal_id: str
    action: str
    arguments: dict[str, Any]
    status: str
    decided_by: str | None
    decided_at: str | None
    reason: str | None
    policy: str | None = None


@dataclass(frozen=True)
class ProposalContext:
    proposal_id: str
    member_id: str
    action: str
    arguments: dict[str, Any]
    agent_reason: str
    status: str
    created_at: str | None
    expires_at: str | None
    model: str | None
    trigger: Trigger | None
    digest: str | None
    # the member's side: None until it answered (then `member_problem` says why not)
    tier: str | None = None
    points: int | None = None
    history: tuple[PastDecision, ...] = ()
    member_answered: bool = False
    member_problem: str | None = None


def from_record(record: dict[str, Any]) -> ProposalContext:
    """The proposal alone, as the queue's record has it (no member reading yet)."""
    raw = record.get("trigger")
    trigger = None
    if isinstance(raw, dict):
        detail = raw.get("detail")
        trigger = Trigger(
            kind=str(raw.get("kind") or ""),
            key=str(raw.get("key") or ""),
            event_id=str(raw.get("event_id") or ""),
            detail=str(detail) if detail else None,
        )
    arguments = record.get("arguments")
    digest = record.get("digest")
    return ProposalContext(
        proposal_id=str(record.get("id") or ""),
        member_id=str(record.get("member_id") or ""),
        action=str(record.get("action") or ""),
        arguments=dict(arguments) if isinstance(arguments, dict) else {},
        agent_reason=str(record.get("reason") or ""),
        status=str(record.get("status") or ""),
        created_at=record.get("created_at"),
        expires_at=record.get("expires_at"),
        model=record.get("model"),
        trigger=trigger,
        digest=str(digest) if digest else None,
        tier=record.get("member_tier"),
    )


def past_decisions(
    records: list[dict[str, Any]], *, leave_out: str = ""
) -> tuple[PastDecision, ...]:
    """The member's decided proposals, most recent decision first."""
    decided = [r for r in records if r.get("status") != "pending" and r.get("id") != leave_out]
    decided.sort(key=lambda r: (str(r.get("decided_at") or ""), str(r.get("id"))), reverse=True)
    return tuple(
        PastDecision(
            proposal_id=str(r.get("id")),
            action=str(r.get("action") or ""),
            arguments=dict(r.get("arguments") or {}),
            status=str(r.get("status") or ""),
            decided_by=r.get("decided_by"),
            decided_at=r.get("decided_at"),
            reason=r.get("decision_reason"),
            policy=r.get("policy"),
        )
        for r in decided[:HISTORY_KEEP]
    )


async def proposal_context(
    client: Client, record: dict[str, Any], *, timeout: timedelta = QUERY_TIMEOUT
) -> ProposalContext:
    """The proposal `record` (a queue row) with its member read now."""
    # here, not at the top: `from_record` serves the window before the workflows load
    from workflows.member import MemberWorkflow, member_workflow_id

    base = from_record(record)
    handle = client.get_workflow_handle(member_workflow_id(base.member_id))
    try:
        state = await handle.query(MemberWorkflow.state, rpc_timeout=timeout)
    except RPCError as error:
        return _unanswered(base, error.message or str(error.status))
    except WorkflowQueryFailedError as error:
        return _unanswered(base, str(error))
    except TimeoutError:
        return _unanswered(base, f"no answer within {timeout.total_seconds():g} s")
    records = [r for r in state.get("proposals") or [] if isinstance(r, dict)]
    # the member's own record of the proposal is the freshest (decided meanwhile?)
    own = next((r for r in records if r.get("id") == base.proposal_id), None)
    current = from_record({**record, **own}) if own else base
    points = state.get("points")
    return replace(
        current,
        tier=state.get("tier") or current.tier,
        points=points if isinstance(points, int) else None,
        history=past_decisions(records, leave_out=base.proposal_id),
        member_answered=True,
    )


def _unanswered(base: ProposalContext, why: str) -> ProposalContext:
    line = " ".join(str(why).split())
    return replace(
        base,
        member_answered=False,
        member_problem=(
            f"member {base.member_id} did not answer ({line}): tier, balance and "
            "earlier decisions are unknown; is a worker running?"
        ),
    )
