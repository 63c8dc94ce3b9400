"""The member workflow's redemptions: the `redeem` and `cancel_redemption` updates (from
build 0.4.0, patch `redemptions`) and the `redemption` query (0.4.1). The rules are
workflows.rules_redeem; a refusal is the update's failure, never the workflow task's.

A mixin of `workflows.member.MemberWorkflow` (the state it reads is the workflow's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import resources
    from workflows.actors import reserved_actor_problem
    from workflows.contract import UPDATE_CANCEL_REDEMPTION, UPDATE_REDEEM
    from workflows.member_messages import (
        QUERY_REDEMPTION,
        CancelRedemption,
        RedeemRequest,
        RedemptionResult,
        cancel_problem,
        redeem_problem,
        time_of,
    )
    from workflows.rules import MemberBook

    # the reward catalogue ships with the build: read once, outside any workflow run
    CATALOGUE = resources.rewards()


class MemberRedemptions:
    """Redeem and cancel (see the module)."""

    _book: MemberBook
    _redeems: bool
    _dirty: bool

    if TYPE_CHECKING:

        def _build(self) -> str: ...

    def _closed(self) -> str | None:
        return None if self._redeems else "this member's build takes no redemptions (from 0.4.0)"

    @workflow.update(name=UPDATE_REDEEM)
    def redeem(self, request: RedeemRequest) -> RedemptionResult:
        earlier = self._book.redemption(request.request_id)
        problem = self._redeem_problem(request)
        if problem:  # the state moved since the validator: the update fails, not the task
            raise ApplicationError(problem, type="RedemptionRefused", non_retryable=True)
        at = time_of(request.at)
        assert at is not None
        record = self._book.redeem(
            request.request_id, request.reward_id, at, CATALOGUE, self._build()
        )
        if earlier is not None:
            return RedemptionResult(False, self._book.s.points, record, "already redeemed")
        self._dirty = True
        return RedemptionResult(True, self._book.s.points, record, "redeemed")

    @redeem.validator
    def _validate_redeem(self, request: RedeemRequest) -> None:
        _refuse(self._redeem_problem(request))

    def _redeem_problem(self, request: RedeemRequest) -> str | None:
        problem = self._closed() or redeem_problem(request) or reserved_actor_problem(request.actor)
        if problem:
            return problem
        at = time_of(request.at)
        assert at is not None
        return self._book.check_redeem(request.request_id, request.reward_id, at, CATALOGUE)

    @workflow.update(name=UPDATE_CANCEL_REDEMPTION)
    def cancel_redemption(self, request: CancelRedemption) -> RedemptionResult:
        problem = self._cancel_problem(request)
        if problem:
            raise ApplicationError(problem, type="CancellationRefused", non_retryable=True)
        record = self._book.cancel_redemption(
            request.request_id,
            f"{request.reason} (by {request.actor})",
            workflow.now(),
            self._build(),
        )
        self._dirty = True
        return RedemptionResult(True, self._book.s.points, record, "cancelled")

    @cancel_redemption.validator
    def _validate_cancel_redemption(self, request: CancelRedemption) -> None:
        _refuse(self._cancel_problem(request))

    def _cancel_problem(self, request: CancelRedemption) -> str | None:
        return (
            self._closed()
            or cancel_problem(request)
            or reserved_actor_problem(request.actor)
            or self._book.check_cancel(request.request_id, request.reason)
        )

    @workflow.query(name=QUERY_REDEMPTION)
    def redemption(self, request_id: str) -> dict[str, Any] | None:
        """One redemption as the member remembers it (None: unknown or forgotten)."""
        return self._book.redemption(request_id)


def _refuse(problem: str | None) -> None:
    """An update validator's refusal: the caller gets `problem`; the history gets nothing."""
    if problem:
        raise ValueError(problem)
