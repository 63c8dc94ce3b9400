"""The member workflow's checks on a person's decision: the proposal it names, the content
it is bound to (HOLD_PATCH), and which proposals policy approves by itself.

A mixin of `workflows.member.MemberWorkflow` (the state it reads is the workflow's)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
)

with workflow.unsafe.imports_passed_through():
    from workflows.agent_desk import AgentDesk
    from workflows.isotime import iso
    from workflows.member_messages import (
        EARLIER_KEEP,
        Decision,
        DecisionResult,
        decided_at_of,
        decision_problem,
    )
    from workflows.proposals import digest_of, points_of
    from workflows.rules import REASON_BYTES, MemberBook, clip_text


class MemberDecisions:
    """The member's checks on decisions (see the module)."""

    _book: MemberBook
    _desk: AgentDesk
    _dirty: bool

    if TYPE_CHECKING:

        def _bounded(self) -> bool: ...

        def _apply_person(
            self, decision: Decision, at: datetime | None = None
        ) -> DecisionResult: ...

    def _binding_problem(self, decision: Decision) -> str | None:
        """Why this decision does not bind to a proposal the member has (from 0.3.0):
        no digest, no such proposal (a decision never waits for one), already decided,
        expired, or (for a fresh decision) content other than what the person saw. A
        re-sent decision for changed content is let through: the handler keeps it in
        the proposal's record and refuses it."""
        pid = decision.proposal_id
        problem = self._desk.check_decision(pid, decision.approve, workflow.now())
        if problem:
            return problem
        if not decision.digest:
            return (
                "a decision must carry the digest of the proposal as it was shown "
                "(this client predates build 0.3.0)"
            )
        record = self._desk.proposals.get(pid)
        assert record is not None
        if digest_of(record) != decision.digest and decision.decided_at is None:
            return self._changed(record)
        return self._approval_problem(pid, decision.approve)

    @staticmethod
    def _changed(record: dict[str, Any]) -> str:
        args = json.dumps(record["arguments"], sort_keys=True, ensure_ascii=False)
        return clip_text(
            f"proposal {record['id']} is not what was shown: it now says "
            f"{record['action']} {args}; look at it again and decide on that",
            REASON_BYTES,
        )

    def _decide_bound(self, decision: Decision) -> DecisionResult:
        """A decision bound to content (see _binding_problem); checked again here, as
        the state may have changed since the validator ran."""
        problem = decision_problem(decision) or self._binding_problem(decision)
        if problem:
            raise ApplicationError(problem, type="DecisionRefused", non_retryable=True)
        pid = decision.proposal_id
        record = self._desk.proposals.get(pid)
        assert record is not None
        now = workflow.now()
        first = decided_at_of(decision)
        if digest_of(record) != decision.digest:
            # a re-sent decision (after a rollback) for content that changed: the
            # proposal stays pending, and says why
            earlier = record.setdefault("earlier_decisions", [])
            earlier.append(
                {
                    "approve": decision.approve,
                    "actor": clip_text(decision.actor.strip(), 200),
                    "reason": clip_text(decision.reason.strip(), REASON_BYTES),
                    "decided_at": iso(first) if first else None,
                    "digest": decision.digest,
                    "why_pending": "the content changed after this decision (a rollback "
                    "re-ran the agent); it needs a new decision",
                }
            )
            del earlier[:-EARLIER_KEEP]
            self._dirty = True
            raise ApplicationError(
                self._changed(record), type="DecisionRefused", non_retryable=True
            )
        return self._apply_person(decision, at=min(first, now) if first else None)

    def _approval_problem(self, proposal_id: str, approve: bool) -> str | None:
        """Why approving this proposal now would break a rule (a grant past the largest
        adjustment, or past the member's daily cap on granted points): refused, never a
        failed workflow task."""
        record = self._desk.proposals.get(proposal_id)
        if not approve or record is None:
            return None
        problem = self._book.check_approved(record["action"], record["arguments"], proposal_id)
        worth = points_of(record["action"], record["arguments"])
        if problem is None and worth and self._bounded():
            policy = self._desk.policy
            granted, _ = self._desk.guard.granted(workflow.now(), policy)
            total = granted + worth
            if total > policy.max_points_per_day:
                problem = (
                    f"approving it would grant this member {total:,} points within a day; "
                    f"the cap is {policy.max_points_per_day:,}"
                )
        return problem

    def _auto_approves(self, record: dict[str, Any]) -> bool:
        """The policy approves this new proposal by itself (a small grant, within the
        daily caps: all grants, and the share policy may approve alone)."""
        if not self._desk.proposals.auto_approvable(record, self._desk.policy):
            return False
        if not self._bounded():
            return True
        if self._book.check_approved(record["action"], record["arguments"], record["id"]):
            return False
        policy, points = self._desk.policy, record["arguments"]["points"]
        granted, by_policy = self._desk.guard.granted(workflow.now(), policy)
        return (
            granted + points <= policy.max_points_per_day
            and by_policy + points <= policy.auto_approve_max_points_per_day
        )
