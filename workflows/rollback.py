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
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import rollback_messages as stubs
    from workflows import rollback_pages as pages
    from workflows import search_attributes
    from workflows.audit import AUDIT_WORKFLOW_ID, SIGNAL_RECORD, AuditEntry
    from workflows.rollback_legacy import LegacyRollback
    from workflows.rollback_messages import MemberProgress, RollbackInput, RollbackProgress
    from workflows.rollback_pages import (
        HEARTBEAT_TIMEOUT,
        RESET_RETRY,
        PagedRun,
        PageOutcome,
        PreviewInput,
        PreviewState,
        PreviewWorkflow,
    )

ROLLBACK_ID_PREFIX = "rollback-"

PAGES_IN_FLIGHT = 2
# from 0.4.4: chunks of members in flight over the pages under way (a chunk is a few
# members, so a slow member holds up few others, and the next chunk starts at once)
CHUNKS_IN_FLIGHT = 4
# chunks due this soon start now: a timer (a workflow task, and the server's timer
# latency, about a second on the dev server) per chunk would cap a fast rollback at
# about a chunk a second, whatever its rate
RATE_SLACK = timedelta(milliseconds=250)


@workflow.defn(name="RollbackWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class RollbackWorkflow(LegacyRollback):
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
        self._slots: asyncio.Semaphore | None = None  # paged, from 0.4.4: chunks in flight
        self._audits: list[asyncio.Task[None]] = []
        self._error: str | None = None

    @workflow.run
    async def run(self, input: RollbackInput) -> RollbackProgress:
        if input.preview_id:
            return await self._run_paged(input, input.preview_id)
        return await self._run_legacy(input)

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
        reset_page = self._reset_page
        if workflow.patched("rollback-chunk-slots"):
            self._slots = asyncio.Semaphore(max(1, input.concurrency // self._chunk_size()))
            reset_page = self._reset_page_in_chunks
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
            tasks.append(asyncio.create_task(reset_page(paged.next_page, gate)))
            paged.next_page += 1
            started += 1
        await asyncio.gather(*tasks)
        await asyncio.gather(*self._audits)
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
            retry_policy=RESET_RETRY,
        )

    async def _reset_page(self, page: int, gate: asyncio.Semaphore) -> None:
        """Page `page`, a chunk of members at a time: pause, cancel and the rate act
        between chunks."""
        assert self._paged is not None
        # members per chunk: half the members in flight, and no more than a second's
        # worth at the rate (a slow rollback starts members one by one, pausable)
        rate = max(0.01, self._input.rate_per_second)
        size = max(1, min(self._input.concurrency // PAGES_IN_FLIGHT, int(rate)))
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
                outcome = await self._page_chunk(page, first, size)
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

    def _chunk_size(self) -> int:
        """Members per chunk (from 0.4.4): a quarter of those in flight, and no more than
        a second's worth at the rate (a slow rollback starts members one by one)."""
        rate = max(0.01, self._input.rate_per_second)
        return max(1, min(self._input.concurrency // CHUNKS_IN_FLIGHT, int(rate)))

    async def _reset_page_in_chunks(self, page: int, gate: asyncio.Semaphore) -> None:
        """Page `page` (from 0.4.4): its first chunk, which tells how many rows the page
        has, then the others side by side, as many chunks in flight over all the pages
        under way as `_slots` holds. Pause, cancel and the rate act between chunks. The
        page's resets are audited in one entry once it ends (cancelled or not), without
        holding up the next page."""
        assert self._paged is not None
        size = self._chunk_size()
        reset: list[str] = []
        try:
            rows = await self._chunk(page, 0, size, reset)
            done = rows is not None
            if rows is not None and rows > size:
                firsts = range(size, rows, size)
                chunks = [self._chunk(page, f, min(size, rows - f), reset) for f in firsts]
                done = all(n is not None for n in await asyncio.gather(*chunks))
        finally:
            gate.release()
            if reset:
                self._audits.append(asyncio.create_task(self._audit_resets(reset)))
        if done:
            self._paged.pages_done += 1

    async def _chunk(self, page: int, first: int, count: int, reset: list[str]) -> int | None:
        """Reset rows first .. first + count of `page`, adding the members reset to
        `reset`; the page's row count, or None if cancelled or failed first (a page
        activity that finally fails stops the rollback)."""
        assert self._paged is not None and self._slots is not None
        rate = max(0.01, self._input.rate_per_second)
        async with self._slots:
            while True:
                await workflow.wait_condition(lambda: not self._paused or self._cancelled)
                if self._cancelled or self._error is not None:
                    return None
                now = workflow.now()
                ahead = self._next_start - now
                if ahead <= RATE_SLACK:
                    break
                await workflow.sleep(ahead - RATE_SLACK)  # the rate, over all chunks
            self._next_start = max(now, self._next_start) + timedelta(seconds=count / rate)
            self._resetting += count
            try:
                outcome = await self._page_chunk(page, first, count)
            except ActivityError as error:  # e.g. the page is gone with retention
                cause = error.cause or error
                self._error = f"page {page}: {getattr(cause, 'message', cause)}"
                return None
            finally:
                self._resetting -= count
        reset.extend(self._paged.record(outcome))
        return outcome.rows

    async def _page_chunk(self, page: int, first: int, count: int) -> PageOutcome:
        """Reset (all at once) rows first .. first + count of `page`."""
        assert self._paged is not None
        info = workflow.info()
        return await workflow.execute_activity(
            pages.reset_page,
            pages.ResetPageInput(
                rollback_id=info.workflow_id,
                preview_id=self._paged.preview_id,
                page=page,
                bad_build=self._input.bad_build,
                reason=f"rollback of {self._input.bad_build}: {self._input.reason}",
                identity=f"{info.workflow_id} for {self._input.actor}",
                concurrency=count,
                first=first,
                count=count,
            ),
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RESET_RETRY,
        )

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
