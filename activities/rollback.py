"""Activities of the rollback workflow: thin wrappers over recovery/repair.py."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.support import heartbeating
from recovery import repair
from recovery.scan import ScanProgress
from workflows.rollback_messages import (
    FIND_DAMAGE,
    RESET_MEMBER,
    RESET_MEMBERS,
    VERIFY_MEMBER,
    FindDamageInput,
    FindDamageResult,
    ResetBatch,
    ResetBatchOutcome,
    ResetInput,
    ResetOutcome,
    VerifyInput,
    VerifyOutcome,
)
from workflows.visibility import QueryError


@activity.defn(name=FIND_DAMAGE)
async def find_damage(input: FindDamageInput) -> FindDamageResult:
    scan = ScanProgress()  # how far it is: in each heartbeat, for `rollback --status`
    async with heartbeating(details=scan.as_json):
        try:
            scanned, damaged = await repair.find_damage(
                activity.client(), input.bad_build, query=input.query, progress=scan
            )
        except QueryError as error:  # retrying cannot fix the query
            raise ApplicationError(str(error), type="QueryError", non_retryable=True) from None
    return FindDamageResult(scanned=scanned, damaged=damaged)


@activity.defn(name=RESET_MEMBER)
async def reset_member(input: ResetInput) -> ResetOutcome:
    async with heartbeating():
        return await _reset(input)


@activity.defn(name=RESET_MEMBERS)
async def reset_members(input: ResetBatch) -> ResetBatchOutcome:
    """Several members at once, in one activity. A retry redoes the batch: members reset
    by the failed attempt are found already repaired (not reset again)."""
    async with heartbeating():
        try:
            # one member failing cancels the others: the retry redoes them, and no heal
            # of this attempt goes on beside it (re-sending events twice at once)
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(_reset(member)) for member in input.members]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return ResetBatchOutcome([task.result() for task in tasks])


async def _reset(input: ResetInput) -> ResetOutcome:
    return await repair.reset_member(
        activity.client(),
        input.member_id,
        input.bad_build,
        request_id=input.request_id,
        reason=input.reason,
        identity=input.identity,
        clean_run=input.clean_run,
        expected=input.expected,
    )


@activity.defn(name=VERIFY_MEMBER)
async def verify_member(input: VerifyInput) -> VerifyOutcome:
    async with heartbeating():
        return await repair.verify_member(
            activity.client(), input.member_id, input.bad_build, input.anchor_run_id, input.expected
        )


ROLLBACK_ACTIVITIES = [find_damage, reset_member, reset_members, verify_member]
