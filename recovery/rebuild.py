"""A member's book rebuilt from what its runs received, as the member workflow built it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import resources
from recovery.history import AgentRun, Approval, Received
from recovery.runs import aware
from workflows.agent_policy import AgentPolicy
from workflows.agent_triggers import TriggerWatch
from workflows.member_messages import (
    REQUESTS_KEEP,
    Adjustment,
    CancelRedemption,
    RedeemRequest,
    time_of,
)
from workflows.proposals import check_draft, points_of
from workflows.rules import CAUSE_BYTES, MemberBook, clip_text


class Rebuild:
    """A member's book rebuilt from what it received, applied as the member workflow
    applies it: events by the rules, an adjustment once per request id, an approved
    proposal once per proposal id (by a person's decision, or by policy from the
    agent run's result)."""

    def __init__(
        self, book: MemberBook, requests: Iterable[str] = (), watch: TriggerWatch | None = None
    ) -> None:
        self.book = book
        # the agent's triggers, watched as the member watches them: which fire again
        self.watch = watch
        self.fired: set[str] = set()
        self.policy = AgentPolicy()
        # adjustment request ids, oldest first: the member knows every one of its run
        # and carries the last REQUESTS_KEEP into the next
        self.requests: dict[str, None] = dict.fromkeys(requests)
        self.run_started: datetime | None = None
        self.proposals: set[str] = set()  # approved
        self.created: set[str] = set()  # made from an agent run's drafts
        self.grants: list[tuple[datetime, int, bool]] = []  # when, points, by policy
        self.accepted: set[str] = set()  # event ids the book accepted (as clipped in state)

    def apply(self, item: Received, build_id: str) -> None:
        book, at = self.book, aware(item.at)
        if item.run_started is not None and item.run_started != self.run_started:
            if self.run_started is not None:  # a new run: what continue-as-new carried
                self.requests = dict.fromkeys(list(self.requests)[-REQUESTS_KEEP:])
            self.run_started = item.run_started
        if item.kind == "event":
            outcome = book.apply(item.payload, build_id=build_id, received_at=at)
            for done in (outcome, *book.released):
                if done.status == "accepted" and done.event_id is not None:
                    self.accepted.add(clip_text(done.event_id, CAUSE_BYTES))
                if self.watch is not None and self.policy.enabled:
                    self.fired.update(t["key"] for t in self.watch.observe(done, book, self.policy))
        elif item.kind == "adjust":
            adjustment: Adjustment = item.payload
            if adjustment.request_id in self.requests:
                return
            self.requests[adjustment.request_id] = None
            cause = f"{adjustment.reason} (by {adjustment.actor})"
            if book.check_adjustment(adjustment.points, adjustment.reason) is None:
                book.adjust(adjustment.points, cause, at, build_id)
        elif item.kind == "redeem":
            # as MemberWorkflow.redeem: refused (the update failed) unless the rules take it
            redeem: RedeemRequest = item.payload
            when, catalogue = time_of(redeem.at), resources.rewards()
            if when is not None and (
                book.check_redeem(redeem.request_id, redeem.reward_id, when, catalogue) is None
            ):
                book.redeem(redeem.request_id, redeem.reward_id, when, catalogue, build_id)
        elif item.kind == "cancel_redemption":
            cancel: CancelRedemption = item.payload
            if book.check_cancel(cancel.request_id, cancel.reason) is None:
                cause = f"{cancel.reason} (by {cancel.actor})"
                book.cancel_redemption(cancel.request_id, cause, at, build_id)
        elif item.kind == "approval":
            approval: Approval = item.payload
            when = datetime.fromisoformat(approval.decided_at) if approval.decided_at else at
            self._approve(approval.proposal_id, approval.action, approval.arguments, when, build_id)
        elif item.kind == "agent":
            self.policy = item.payload.policy
            self._auto_approve(item.payload, at, build_id)

    def _approve(
        self,
        proposal_id: str,
        action: str,
        args: dict[str, Any],
        at: datetime,
        build_id: str,
        *,
        by_policy: bool = False,
    ) -> None:
        if proposal_id in self.proposals:
            return
        if self.book.check_approved(action, args, proposal_id):
            return  # the member refuses it too (a bounded run; older ones failed the task)
        self.proposals.add(proposal_id)
        self.book.apply_approved(action, args, proposal_id, aware(at), build_id)
        if points_of(action, args):  # a grant or a goodwill reward: the daily cap counts it
            self.grants.append((aware(at), points_of(action, args), by_policy))

    def _granted(self, at: datetime, policy: AgentPolicy) -> tuple[int, int]:
        """AgentGuard.granted: (points granted, of them by policy) in the day before `at`."""
        since = aware(at) - timedelta(seconds=policy.day_seconds)
        recent = [g for g in self.grants if g[0] > since]
        return sum(g[1] for g in recent), sum(g[1] for g in recent if g[2])

    def _auto_approve(self, run: AgentRun, at: datetime, build_id: str) -> None:
        """ProposalBook.create then auto_approvable, as MemberWorkflow._take_result does."""
        if not run.ok:
            return
        policy = run.policy
        limit = min(policy.auto_approve_max_points, policy.points_cap)
        for index, draft in enumerate(run.drafts[: policy.max_proposals_per_run]):
            proposal_id = f"{self.book.member_id}:{run.trigger_key}:{index}"
            if proposal_id in self.created:
                continue  # a re-run of the same trigger makes no proposal twice
            self.created.add(proposal_id)
            args, refused = check_draft(draft, policy, tier=self.book.s.tier)
            if refused or draft.get("action") != "grant_points":
                continue
            if not 0 < args["points"] <= limit:
                continue
            if run.capped:
                granted, auto = self._granted(at, policy)
                if (
                    granted + args["points"] > policy.max_points_per_day
                    or auto + args["points"] > policy.auto_approve_max_points_per_day
                ):
                    continue  # MemberWorkflow._auto_approves: left for a person
            self._approve(proposal_id, "grant_points", args, at, build_id, by_policy=True)
