"""Activities of the rollback workflow: thin wrappers over activities/repair.py."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities import repair
from workflows.rollback_messages import (
    FIND_DAMAGE,
    RESET_MEMBER,
    VERIFY_MEMBER,
    FindDamageInput,
    FindDamageResult,
    ResetInput,
    ResetOutcome,
    VerifyInput,
    VerifyOutcome,
)


@activity.defn(name=FIND_DAMAGE)
async def find_damage(input: FindDamageInput) -> FindDamageResult:
    heartbeat = asyncio.create_task(_heartbeat_until_done())
    try:
        scanned, damaged = await repair.find_damage(
            activity.client(), input.bad_build, query=input.query
        )
    finally:
        heartbeat.cancel()
    return FindDamageResult(scanned=scanned, damaged=damaged)


@activity.defn(name=RESET_MEMBER)
async def reset_member(input: ResetInput) -> ResetOutcome:
    return await repair.reset_member(
        activity.client(),
        input.member_id,
        input.bad_build,
        request_id=input.request_id,
        reason=input.reason,
        identity=input.identity,
    )


@activity.defn(name=VERIFY_MEMBER)
async def verify_member(input: VerifyInput) -> VerifyOutcome:
    return await repair.verify_member(
        activity.client(), input.member_id, input.bad_build, input.anchor_run_id, input.expected
    )


async def _heartbeat_until_done() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(10)


ROLLBACK_ACTIVITIES = [find_damage, reset_member, verify_member]
