"""RollbackWorkflow: repair every member a bad build touched, durably.

Plan (find the damage), then reset each member to the first task of the bad build
at a bounded rate, pausable and cancellable, then verify every repaired member.
Progress is readable by query at any time; the workflow survives the app and the
worker being killed, and a retried reset never resets a member twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import rollback_messages as stubs
    from workflows import rollback_pages as pages
    from workflows import search_attributes
    from workflows.audit import AUDIT_WORKFLOW_ID, SIGNAL_RECORD, AuditEntry
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
    from workflows.rollback_pages import PagedRun, PreviewInput, PreviewState, PreviewWorkflow

ROLLBACK_ID_PREFIX = "rollback-"
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)

BATCH_MAX = 8  # members reset by one activity

# a killed worker's activity is retried after this long, not after its whole timeout
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


PAGES_IN_FLIGHT = 2


@workflow.defn(name="RollbackWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class RollbackWorkflow:
    @workflow.init
    def __init__(self, input: RollbackInput) -> None:
        self._input = input
        self._state = "planning"
        self._paused = False
        self._cancelled = False
        self._members: dict[str, MemberProgress] = {}
        self._scanned = 0
        self._seconds: dict[str, float] = {}
        self._since = workflow.now()
        self._batched = False
        self._paged: PagedRun | None = None
        self._next_start = workflow.now()  # paged: when the next chunk may start
        self._resetting = 0  # paged: members in chunks under way
        self._error: str | None = None

    @workflow.run
    async def run(self, input: RollbackInput) -> RollbackProgress:
        if input.preview_id:
            return await self._run_paged(input, input.preview_id)
        # several members per activity, each verified right after its reset (rollbacks
        # started before this change reset one member per activity and verify afterwards)
        self._batched = workflow.patched("rollback-batched-resets")
        plan = await workflow.execute_activity(
            stubs.find_damage,
            FindDamageInput(input.bad_build, input.query),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
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
                    retry_policy=ACTIVITY_RETRY,
                )
                outcomes = batch.outcomes
            else:
                outcomes = [
                    await workflow.execute_activity(
                        stubs.reset_member,
                        inputs[0],
                        start_to_close_timeout=timedelta(minutes=2),
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        retry_policy=ACTIVITY_RETRY,
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
                    retry_policy=ACTIVITY_RETRY,
                )
                progress.verified = outcome.ok
                progress.problems = outcome.problems

        done = [
            p
            for p in self._members.values()
            if p.status in ("reset", "already-repaired") and p.verified is None
        ]
        await asyncio.gather(*(verify(p) for p in done))

    async def _audit_resets(self, reset: list[str]) -> None:
        if not reset:
            return
        entry = AuditEntry(
            action="rollback.reset",
            actor=f"{workflow.info().workflow_id} for {self._input.actor}",
            reason=self._input.reason,
            subject=self._input.bad_build,
            details={"members": reset, "count": len(reset)},
        )
        try:
            await workflow.get_external_workflow_handle(AUDIT_WORKFLOW_ID).signal(
                SIGNAL_RECORD, entry
            )
        except Exception:  # no audit log on this cluster yet (the CLI starts it)
            workflow.logger.warning("audit log workflow not found; resets not recorded")

    # -- paged: exactly the rows of a durable preview ---------------------------------

    async def _run_paged(self, input: RollbackInput, preview_id: str) -> RollbackProgress:
        paged = input.paged or PagedRun(preview_id, pages_per_run=input.pages_per_run)
        self._paged, self._paused = paged, paged.paused
        self._seconds = dict(paged.seconds)
        if paged.runs > 1:
            self._state = "running"
        gate = asyncio.Semaphore(PAGES_IN_FLIGHT)
        tasks: list[asyncio.Task[None]] = []
        started, finished = 0, False
        while started < max(1, paged.pages_per_run) and self._error is None:
            await workflow.wait_condition(lambda: not self._paused or self._cancelled)
            if self._cancelled:
                break
            preview = paged.preview
            if preview is None or paged.next_page >= preview.pages:
                if preview is not None and preview.finished:
                    finished = True
                    break
                paged.preview = await self._preview_status(paged.next_page)
                if paged.preview.state == "failed":
                    self._error = f"the preview failed: {paged.preview.error}"
                continue
            await gate.acquire()
            if self._state == "planning":
                self._set_state("running")
            tasks.append(asyncio.create_task(self._reset_page(paged.next_page, gate)))
            paged.next_page += 1
            started += 1
        await asyncio.gather(*tasks)
        if self._cancelled and paged.preview is None:  # cancelled before the first page
            paged.preview = await self._preview_status(-1)  # how many it leaves untouched
        if not (finished or self._cancelled or self._error):
            self._set_state(self._state)  # count the time spent so far
            paged.paused, paged.seconds, paged.runs = self._paused, self._seconds, paged.runs + 1
            workflow.continue_as_new(dataclasses.replace(input, paged=paged))
        if finished and not self._cancelled:
            self._set_state("verifying")  # what still carries the bad build now
            paged.after_preview = await self._scan_after()
        self._set_state("cancelled" if self._cancelled else "failed" if self._error else "done")
        return self.progress()

    async def _preview_status(self, page: int) -> PreviewState:
        return await workflow.execute_activity(
            pages.preview_status,
            pages.StatusInput(self._input.preview_id or "", more_than=page),
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    async def _reset_page(self, page: int, gate: asyncio.Semaphore) -> None:
        """Page `page`, a chunk of members at a time: pause, cancel and the rate act
        between chunks."""
        assert self._paged is not None
        # members per chunk: half the members in flight, and no more than a second's
        # worth at the rate (a slow rollback starts members one by one, pausable)
        rate = max(0.01, self._input.rate_per_second)
        size = max(1, min(self._input.concurrency // PAGES_IN_FLIGHT, int(rate)))
        info = workflow.info()
        first, rows, chunk = 0, None, 0
        try:
            while rows is None or first < rows:
                await workflow.wait_condition(lambda: not self._paused or self._cancelled)
                if self._cancelled:
                    return
                now = workflow.now()
                if self._next_start > now:  # the rate limit, over all pages in flight
                    await workflow.sleep(self._next_start - now)
                    continue  # paused or cancelled meanwhile?
                self._next_start = max(now, self._next_start) + timedelta(seconds=size / rate)
                chunk = size if rows is None else min(size, rows - first)
                self._resetting += chunk
                outcome = await workflow.execute_activity(
                    pages.reset_page,
                    pages.ResetPageInput(
                        rollback_id=info.workflow_id,
                        preview_id=self._paged.preview_id,
                        page=page,
                        bad_build=self._input.bad_build,
                        reason=f"rollback of {self._input.bad_build}: {self._input.reason}",
                        identity=f"{info.workflow_id} for {self._input.actor}",
                        concurrency=size,
                        first=first,
                        count=size,
                    ),
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
                self._resetting -= chunk
                rows, first = outcome.rows, first + size
                await self._audit_resets(self._paged.record(outcome))
        except ActivityError as error:  # e.g. the page is gone with retention
            self._resetting -= chunk
            cause = error.cause or error
            self._error = f"page {page}: {getattr(cause, 'message', cause)}"
            return
        finally:
            gate.release()
        self._paged.pages_done += 1

    async def _scan_after(self) -> PreviewState:
        """A preview of the members still damaged after the last page: kept on the
        server like any preview, to be confirmed and executed on its own."""
        after = f"{self._input.preview_id}-after-{workflow.uuid4().hex[:8]}"
        now = workflow.now()
        query = pages.members_query(now, self._input.query)
        return await workflow.execute_child_workflow(
            PreviewWorkflow.run,
            PreviewInput(after, self._input.bad_build, query, now.isoformat()),
            id=after,
            memo={"bad_build": self._input.bad_build},
        )

    def _paged_progress(self, paged: PagedRun, state: str) -> RollbackProgress:
        preview = paged.preview
        counts = dict(paged.counts)
        total = max(preview.counts.affected if preview else 0, sum(counts.values()))
        if self._resetting:
            counts["resetting"] = self._resetting
        left = total - sum(counts.values())
        if left > 0:
            counts["cancelled" if state == "cancelled" else "pending"] = left
        return RollbackProgress(
            bad_build=self._input.bad_build,
            state=state,
            total=total,
            counts=counts,
            verified_ok=paged.verified_ok,
            mismatches=list(paged.mismatches),
            not_repairable=list(paged.not_repairable),
            scanned=preview.counts.scanned if preview else 0,
            seconds=dict(self._seconds),
            preview_id=paged.preview_id,
            pages_done=paged.pages_done,
            pages=preview.pages if preview else 0,
            mismatch_count=paged.mismatch_count,
            error=self._error,
            after_preview=paged.after_summary(),
        )

    def _set_state(self, state: str) -> None:
        now = workflow.now()
        spent = (now - self._since).total_seconds()
        self._seconds[self._state] = round(self._seconds.get(self._state, 0.0) + spent, 3)
        self._state, self._since = state, now
        workflow.upsert_search_attributes([search_attributes.ROLLBACK_STATE.value_set(state)])

    # -- control ------------------------------------------------------------------

    @workflow.signal(name=stubs.SIGNAL_PAUSE)
    def pause(self) -> None:
        if self._state in ("planning", "running"):
            self._paused = True

    @workflow.signal(name=stubs.SIGNAL_RESUME)
    def resume(self) -> None:
        self._paused = False

    @workflow.signal(name=stubs.SIGNAL_CANCEL)
    def cancel(self) -> None:
        self._cancelled = True

    @workflow.query(name=stubs.QUERY_PROGRESS)
    def progress(self) -> RollbackProgress:
        counts: dict[str, int] = {}
        for member in self._members.values():
            counts[member.status] = counts.get(member.status, 0) + 1
        state = "paused" if self._paused and self._state in ("planning", "running") else self._state
        if self._paged is not None:
            return self._paged_progress(self._paged, state)
        return RollbackProgress(
            bad_build=self._input.bad_build,
            state=state,
            total=len(self._members),
            counts=counts,
            verified_ok=sum(1 for m in self._members.values() if m.verified),
            mismatches=[
                {"member_id": m.member_id, "problems": m.problems}
                for m in self._members.values()
                if m.verified is False
            ],
            not_repairable=[
                {"member_id": m.member_id, "reason": m.message}
                for m in self._members.values()
                if m.status == "not-repairable"
            ],
            scanned=self._scanned,
            seconds=dict(self._seconds),
        )
