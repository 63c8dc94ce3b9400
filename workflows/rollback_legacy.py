"""RollbackWorkflow's first way (builds before 0.4.3, kept for the rollbacks they
started and for their recorded histories): find the damage inside the workflow, reset
each member, verify them all.

A mixin of `workflows.rollback.RollbackWorkflow` (the state it reads is the workflow's).
Rollbacks started from 0.4.3 act on a durable preview instead (see the workflow)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import rollback_messages as stubs
    from workflows.rollback_messages import (
        Damage,
        FindDamageInput,
        MemberProgress,
        ResetBatch,
        ResetInput,
        RollbackInput,
        RollbackProgress,
        VerifyInput,
    )
    from workflows.rollback_pages import HEARTBEAT_TIMEOUT, RESET_RETRY

BATCH_MAX = 8  # members reset by one activity


class LegacyRollback:
    """Find, reset, verify (see the module)."""

    _input: RollbackInput
    _members: dict[str, MemberProgress]
    _batched: bool
    _paused: bool
    _cancelled: bool
    _scanned: int

    if TYPE_CHECKING:

        def _set_state(self, state: str) -> None: ...

        async def _audit_resets(self, reset: list[str]) -> None: ...

        def progress(self) -> RollbackProgress: ...

    async def _run_legacy(self, input: RollbackInput) -> RollbackProgress:
        # several members per activity, each verified right after its reset (rollbacks
        # started before this change reset one member per activity and verify afterwards)
        self._batched = workflow.patched("rollback-batched-resets")
        plan = await workflow.execute_activity(
            stubs.find_damage,
            FindDamageInput(input.bad_build, input.query),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RESET_RETRY,
        )
        self._scanned = plan.scanned
        for damage in plan.damaged:
            progress = MemberProgress(damage.member_id)
            if damage.problem:
                progress.status, progress.message = "not-repairable", damage.problem
            self._members[damage.member_id] = progress
        self._set_state("running")
        await self._reset_all(plan.damaged)
        if not self._cancelled:
            self._set_state("verifying")
        await self._verify_all()
        self._set_state("cancelled" if self._cancelled else "done")
        return self.progress()

    async def _reset_all(self, plan: list[Damage]) -> None:
        pending = [d for d in plan if not d.problem]
        concurrency = max(1, self._input.concurrency)
        # members per activity: fewer activities (each costs the server several history
        # writes and a workflow task) while `concurrency` members are still in flight
        size = max(1, min(BATCH_MAX, concurrency // 4)) if self._batched else 1
        gate = asyncio.Semaphore(max(1, concurrency // size))
        rate = max(0.01, self._input.rate_per_second)
        wave = max(1, int(rate))  # members started together, then a pause of wave / rate
        tasks: list[asyncio.Task[None]] = []
        for start in range(0, len(pending), wave):
            await workflow.wait_condition(lambda: not self._paused or self._cancelled)
            if self._cancelled:
                break
            members = pending[start : start + wave]
            for first in range(0, len(members), size):
                chunk = members[first : first + size]
                tasks.append(asyncio.create_task(self._reset_chunk(chunk, gate)))
            if start + wave < len(pending):
                await workflow.sleep(timedelta(seconds=wave / rate))  # the rate limit
        await asyncio.gather(*tasks)
        for progress in self._members.values():
            if progress.status == "pending":
                progress.status = "cancelled"
        await self._audit_resets(
            sorted(p.member_id for p in self._members.values() if p.status == "reset")
        )

    async def _reset_chunk(self, chunk: list[Damage], gate: asyncio.Semaphore) -> None:
        async with gate:
            # a pause or cancel also holds back members of a wave already under way
            await workflow.wait_condition(lambda: not self._paused or self._cancelled)
            if self._cancelled:
                return
            for damage in chunk:
                self._members[damage.member_id].status = "resetting"
            inputs = [self._reset_input(damage.member_id) for damage in chunk]
            if self._batched:
                batch = await workflow.execute_activity(
                    stubs.reset_members,
                    ResetBatch(inputs),
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RESET_RETRY,
                )
                outcomes = batch.outcomes
            else:
                outcomes = [
                    await workflow.execute_activity(
                        stubs.reset_member,
                        inputs[0],
                        start_to_close_timeout=timedelta(minutes=2),
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        retry_policy=RESET_RETRY,
                    )
                ]
            for outcome in outcomes:
                progress = self._members[outcome.member_id]
                progress.status = outcome.status
                progress.new_run_id = outcome.new_run_id
                progress.redelivered = outcome.redelivered
                progress.message = outcome.message
                if outcome.verification is not None:
                    progress.verified = outcome.verification.ok
                    progress.problems = outcome.verification.problems

    def _reset_input(self, member: str) -> ResetInput:
        return ResetInput(
            member_id=member,
            bad_build=self._input.bad_build,
            # one reset per member and rollback, however often this is retried
            request_id=f"{workflow.info().workflow_id}/{member}",
            reason=f"rollback of {self._input.bad_build}: {self._input.reason}",
            identity=f"{workflow.info().workflow_id} for {self._input.actor}",
            clean_run=self._input.clean.get(member) if self._batched else None,
            expected=self._input.expected.get(member) if self._batched else None,
        )

    async def _verify_all(self) -> None:
        gate = asyncio.Semaphore(max(1, self._input.concurrency))

        async def verify(progress: MemberProgress) -> None:
            async with gate:
                outcome = await workflow.execute_activity(
                    stubs.verify_member,
                    VerifyInput(
                        member_id=progress.member_id,
                        bad_build=self._input.bad_build,
                        anchor_run_id=progress.new_run_id if progress.status == "reset" else None,
                        expected=self._input.expected.get(progress.member_id),
                    ),
                    start_to_close_timeout=timedelta(minutes=2),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RESET_RETRY,
                )
                progress.verified = outcome.ok
                progress.problems = outcome.problems

        done = [
            p
            for p in self._members.values()
            if p.status in ("reset", "already-repaired") and p.verified is None
        ]
        await asyncio.gather(*(verify(p) for p in done))
