"""Rewards and redemptions: the catalogue of this build, redeeming and cancelling
(sent and audited in one place: the CLI and the window call these), and a member's
redemptions as the member records them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

import resources
from recovery.found import if_found
from runtime.adjustments import send_audited
from runtime.connect import Target
from runtime.deployment import os_account
from workflows.effects import SIGNAL_POKE
from workflows.isotime import iso
from workflows.member import MemberWorkflow, member_workflow_id
from workflows.member_messages import CancelRedemption, RedeemRequest, RedemptionResult

REDEEM = "member.redeem"
CANCEL = "member.cancel_redemption"


class RedemptionRefused(ValueError):
    """The member refused; the message is its one-line reason."""


def catalogue() -> list[dict[str, Any]]:
    """The rewards this build offers, cheapest first."""
    return sorted(resources.rewards().values(), key=lambda r: (r["cost"], r["id"]))


def _after(result: RedemptionResult) -> dict[str, Any]:
    return {"balance": result.points, "returned": result.redemption["returned"]}


async def redeem(
    client: Client,
    target: Target,
    member_id: str,
    reward_id: str,
    *,
    reason: str = "redeemed by the operator",
    actor: str | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> RedemptionResult:
    """Spend a member's points on a reward; applied or refused, it goes to the audit.
    The same request_id and time again answer with the first result: given a
    request_id the member already has for this reward, its time is reused, so a
    retried command redeems once."""
    if request_id is not None and at is None:
        earlier = [
            r
            for r in await redemptions(client, member_id)
            if r["request_id"] == request_id and r["reward_id"] == reward_id
        ]
        if earlier:
            at = datetime.fromisoformat(earlier[0]["requested_at"])
    request = RedeemRequest(
        request_id=request_id or f"desk-{uuid.uuid4().hex}",
        reward_id=reward_id,
        at=iso(at or datetime.now(UTC)),
        actor=actor or os_account(),
    )
    details = {"reward_id": reward_id, "request_id": request.request_id}
    return await send_audited(
        client,
        target,
        REDEEM,
        member_id,
        MemberWorkflow.redeem,
        request,
        reason=reason.strip() or "redeemed by the operator",
        details=details,
        after=_after,
        refused=RedemptionRefused,
    )


async def cancel(
    client: Client,
    target: Target,
    member_id: str,
    request_id: str,
    *,
    reason: str,
    actor: str | None = None,
) -> RedemptionResult:
    """Cancel a redemption: its points come back once (see workflows.rules_redeem). Its
    reward's effect, if one waits undelivered, is told to look again: it is then not
    delivered; one already delivered stays delivered."""
    if not reason.strip():
        raise RedemptionRefused("a reason is required")
    request = CancelRedemption(request_id, reason.strip(), actor or os_account())
    result = await send_audited(
        client,
        target,
        CANCEL,
        member_id,
        MemberWorkflow.cancel_redemption,
        request,
        reason=request.reason,
        details={"request_id": request_id},
        after=_after,
        refused=RedemptionRefused,
    )
    effect_id = result.redemption.get("effect_id")
    if effect_id:
        try:
            await client.get_workflow_handle(effect_id).signal(SIGNAL_POKE, "cancelled")
        except RPCError as error:  # finished already (delivered): nothing to tell it
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    return result


async def redemptions(client: Client, member_id: str) -> list[dict[str, Any]]:
    """A member's redemptions, oldest first (the latest 50 the member shows)."""
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    state = await if_found(handle.query(MemberWorkflow.state))
    if state is None:
        raise RedemptionRefused(f"unknown member {member_id!r}")
    return list(state.get("redemptions") or [])
