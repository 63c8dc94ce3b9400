"""Manual adjustments of a member's points: sent and audited in one place (the member
detail window and any script call this), whatever the member answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from runtime import audit
from runtime.connect import Target
from runtime.deployment import os_account
from workflows.member import Adjustment, AdjustmentResult, MemberWorkflow, member_workflow_id

ACTION = "member.adjust"
R = TypeVar("R")


class AdjustmentRefused(ValueError):
    """The member refused the adjustment; the message is its one-line reason."""


def refusal(error: Exception) -> str:
    """The validator's one-line reason, without the SDK's wrapping."""
    cause = getattr(error, "cause", None)
    message = getattr(cause, "message", None) or str(cause or error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


async def adjust(
    client: Client,
    target: Target,
    member_id: str,
    points: int,
    *,
    reason: str,
    actor: str | None = None,
    request_id: str | None = None,
) -> AdjustmentResult:
    """Add (or take) `points`, with a reason; applied or refused, it goes to the audit."""
    request = Adjustment(
        points=points,
        reason=reason.strip(),
        actor=actor or os_account(),
        request_id=request_id or f"desk-{uuid.uuid4().hex}",
    )
    return await send_audited(
        client,
        target,
        ACTION,
        member_id,
        MemberWorkflow.adjust,
        request,
        reason=request.reason or "(no reason given)",
        details={"points": points, "request_id": request.request_id},
        after=lambda result: {"ledger_seq": result.ledger_seq, "balance": result.points},
        refused=AdjustmentRefused,
    )


async def send_audited(
    client: Client,
    target: Target,
    action: str,
    member_id: str,
    update: Any,
    request: Any,
    *,
    reason: str,
    details: dict[str, Any],
    after: Callable[[R], dict[str, Any]],
    refused: type[ValueError],
) -> R:
    """An operator's update to one member, audited whatever the member answers: applied
    (with `after(result)` added to the details) or refused (raised as `refused` with the
    member's one-line reason; an unknown member is refused too)."""
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    why: str | None = None
    try:
        result: R = await handle.execute_update(update, request)
    except (WorkflowUpdateFailedError, RPCError) as error:
        if isinstance(error, RPCError) and error.status != RPCStatusCode.NOT_FOUND:
            raise
        why = f"unknown member {member_id!r}" if isinstance(error, RPCError) else refusal(error)
    await audit.record(
        client,
        target,
        action,
        reason=reason,
        subject=member_id,
        details=details if why is not None else {**details, **after(result)},
        actor=request.actor,
        outcome=f"refused: {why}" if why is not None else getattr(result, "message", ""),
    )
    if why is not None:
        raise refused(why)
    return result
