"""A rollback's preview and its execution, one page of members at a time.

Plain async functions over a Temporal client (the activities in
activities/rollback_pages.py wrap them; runtime.releases reads pages for the wizard and
the CLI). A page's rows are kept as the input of a PreviewPageWorkflow: written once,
read by anyone, nothing held in a process's memory."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import WorkflowExecutionStatus as WorkflowExecutionStatusProto
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHistoryEventFilterType,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from recovery.damage import bounded, checked_damage
from recovery.plan import MemberPreview, preview_member
from recovery.reset import reset_member
from recovery.scan import ScanProgress
from recovery.verify import verify_member
from workflows.rollback_pages import (
    LIST_CAP,
    MemberOutcome,
    PageInput,
    PageOutcome,
    PageResult,
    PreviewCounts,
    PreviewPage,
    PreviewPageWorkflow,
    PreviewState,
    PreviewWorkflow,
    ResetPageInput,
    page_id,
)
from workflows.visibility import all_of

DETAIL_CAP = 20  # ledger entries and decisions kept per row: a row stays a few KB
ROW_BYTES = 4_000
TEXT_CAP = 300


def row_of(p: MemberPreview) -> dict[str, Any]:
    """One member's preview as the tables, the CLI's JSON and the page keep it."""
    row: dict[str, Any] = {
        "member_id": p.member_id,
        "before": p.before,
        "after": p.after,
        "changes": p.changes,
        "ledger_removed": p.ledger_removed[:DETAIL_CAP],
        "ledger_added": p.ledger_added[:DETAIL_CAP],
        "redeliver": p.redeliver,
        "problem": p.problem[:TEXT_CAP] if p.problem else None,
        "clean_run": p.clean_run,
        "decisions": p.decisions[:DETAIL_CAP],
        "as_of": p.as_of,
        "agent_runs": p.agent_runs,
    }
    more = {
        k: n - DETAIL_CAP
        for k, n in (
            ("ledger_removed", len(p.ledger_removed)),
            ("ledger_added", len(p.ledger_added)),
            ("decisions", len(p.decisions)),
        )
        if n > DETAIL_CAP
    }
    if more:
        row["more"] = more  # entries left out of the row, by list
    if len(json.dumps(row, default=str)) > ROW_BYTES:  # long texts in the details
        row.update(ledger_removed=[], ledger_added=[], decisions=[])
        row["more"] = {
            "ledger_removed": len(p.ledger_removed),
            "ledger_added": len(p.ledger_added),
            "decisions": len(p.decisions),
        }
    return row


def counts_of(page: PreviewPage) -> PreviewCounts:
    counts = PreviewCounts(
        total=page.total, listed=page.listed, scanned=page.scanned, affected=len(page.rows)
    )
    for row in page.rows:
        if row["problem"]:
            counts.not_repairable.append({"member_id": row["member_id"], "reason": row["problem"]})
            continue
        counts.repairable += 1
        before, after = row["before"], row["after"]
        counts.changing += bool(row["changes"])
        for k in ("points", "lifetime_points"):
            setattr(counts, f"{k}_before", getattr(counts, f"{k}_before") + before.get(k, 0))
            setattr(counts, f"{k}_after", getattr(counts, f"{k}_after") + after.get(k, 0))
        counts.points_moved += abs(after.get("points", 0) - before.get("points", 0))
        for decision in row["decisions"]:
            if decision["fate"] == "dropped":
                counts.approvals_dropped_count += 1
                counts.approvals_dropped.append({"member_id": row["member_id"], **decision})
    counts.not_repairable = counts.not_repairable[:LIST_CAP]
    counts.approvals_dropped = counts.approvals_dropped[:LIST_CAP]
    return counts


async def preview_page(
    client: Client, input: PageInput, scan: ScanProgress, task_queue: str
) -> PageResult:
    """List one page of members, preview the damaged ones and keep their rows as page
    `input.page` (a workflow on `task_queue`). A retry finds the page the first attempt
    kept and reports it as is."""
    kept = await read_page(client, input.preview_id, input.page)
    if kept is not None:
        return PageResult(counts_of(kept), True, kept.next_cursor)
    total = 0
    if input.cursor is None:  # the first page: how many members there are to look at
        running = all_of(input.query, "ExecutionStatus = 'Running'")
        total = (await client.count_workflows(running or input.query)).count
        scan.total = total
    listing = await client.workflow_service.list_workflow_executions(
        ListWorkflowExecutionsRequest(
            namespace=client.namespace,
            page_size=input.page_size,
            next_page_token=base64.b64decode(input.cursor) if input.cursor else b"",
            query=input.query,
        )
    )
    scan.listed += len(listing.executions)
    started = datetime.fromisoformat(input.listed_from)
    # every listed run is looked at: which of a member's runs counts it is decided by
    # `_counted_here`, not by which one this page happens to list last
    runs = list(listing.executions)

    async def look(execution: WorkflowExecutionInfo) -> MemberPreview | None:
        workflow_id = execution.execution.workflow_id
        description = await client.get_workflow_handle(workflow_id).describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        if not await _counted_here(client, execution, description, started):
            return None
        scan.scanned += 1  # members: each counted by one of its listed runs
        damage = await checked_damage(client, description, input.bad_build)
        if damage is None:
            return None
        scan.found += 1
        previewed = await preview_member(client, damage)
        scan.previewed += 1
        return previewed

    previews = [p for p in await bounded(runs, look, 16) if p is not None]
    token = listing.next_page_token
    page = PreviewPage(
        input.preview_id,
        input.bad_build,
        input.page,
        [row_of(p) for p in sorted(previews, key=lambda p: p.member_id)],
        listed=len(listing.executions),
        scanned=scan.scanned,
        total=total,
        next_cursor=base64.b64encode(token).decode() if token else None,
    )
    if page.rows:
        await client.start_workflow(
            PreviewPageWorkflow.run,
            page,
            id=page_id(input.preview_id, input.page),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    return PageResult(counts_of(page), bool(page.rows), page.next_cursor)


async def _counted_here(
    client: Client,
    listed: WorkflowExecutionInfo,
    current: WorkflowExecutionDescription,
    listing_started: datetime,
) -> bool:
    """Whether this listing of the member is the one that counts it, so a member is
    previewed once however many of its runs the pages list. Visibility lists running
    runs first, then closed ones: a running run counts if it is still the member's
    current run; a run that continued as new counts only if the run it continued into
    is current and started after the listing began (so the running pass did not list
    it). Left to chance: a run started in the instant between the query being made and
    the first page being listed may be counted twice (the rollback then finds it
    already repaired), and one started within visibility's lag before may be missed
    (the rollback's scan after its last page lists it as still damaged)."""
    if listed.status == WorkflowExecutionStatusProto.WORKFLOW_EXECUTION_STATUS_RUNNING:
        return listed.execution.run_id == current.run_id
    if current.start_time is None or current.start_time <= listing_started:
        return False
    handle = client.get_workflow_handle(
        listed.execution.workflow_id, run_id=listed.execution.run_id
    )
    async for event in handle.fetch_history_events(
        event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
    ):
        attributes = event.workflow_execution_continued_as_new_event_attributes
        return bool(attributes.new_execution_run_id == current.run_id)
    return False


# pages this process read lately, for the chunks of a page that follow the first: a
# page is written once and never changes
_READ: dict[tuple[str, str, int], PreviewPage] = {}
READ_KEPT = 32


async def read_page(
    client: Client, preview_id: str, page: int, *, again: bool = False
) -> PreviewPage | None:
    """Page `page` of a preview (None: no such page, or retention removed it).
    `again`: the copy this process read before will do."""
    key = (client.namespace, preview_id, page)
    if again and key in _READ:
        return _READ[key]
    handle = client.get_workflow_handle(page_id(preview_id, page))
    try:
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await client.data_converter.decode(payloads, [PreviewPage])
            kept: PreviewPage = decoded[0]
            while len(_READ) >= READ_KEPT:
                del _READ[next(iter(_READ))]
            _READ[key] = kept
            return kept
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


async def preview_state(client: Client, preview_id: str) -> PreviewState | None:
    """How far a preview is (None: no such preview)."""
    handle = client.get_workflow_handle(preview_id, result_type=PreviewState)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
        return await handle.query(PreviewWorkflow.preview)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def wait_pages(
    client: Client, preview_id: str, more_than: int, wait_s: float
) -> PreviewState:
    """The preview's state once it has more than `more_than` pages or has finished, or
    after `wait_s` as it is."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        state = await preview_state(client, preview_id)
        if state is None:
            raise LookupError(f"no preview {preview_id!r}")
        if state.pages > more_than or state.finished:
            return state
        if asyncio.get_running_loop().time() >= deadline:
            return state
        await asyncio.sleep(0.2)


async def reset_page(client: Client, input: ResetPageInput) -> PageOutcome:
    """Reset, re-deliver and verify the members of one page, exactly as previewed; a
    retry finds the members reset by the failed attempt already repaired."""
    page = await read_page(client, input.preview_id, input.page, again=True)
    if page is None:
        raise LookupError(
            f"page {input.page} of preview {input.preview_id} is gone (retention): preview again"
        )

    async def one(row: dict[str, Any]) -> MemberOutcome:
        member = row["member_id"]
        if row["problem"]:
            return MemberOutcome(member, "not-repairable", message=row["problem"])
        expected = {**row["after"], "as_of": row.get("as_of")}
        outcome = await reset_member(
            client,
            member,
            input.bad_build,
            # one reset per member and rollback, however often this is retried
            request_id=f"{input.rollback_id}/{member}",
            reason=input.reason,
            identity=input.identity,
            clean_run=row.get("clean_run"),
            expected=expected,
            # a row kept by an older build does not say: wait for the agent
            settle_agent=row.get("agent_runs") != 0,
            check_chain=False,  # the rollback's scan after its last page does
        )
        verification = outcome.verification
        if verification is None and outcome.status == "already-repaired":
            verification = await verify_member(
                client, member, input.bad_build, outcome.new_run_id, expected, check_chain=False
            )
        return MemberOutcome(
            member,
            outcome.status,
            verification.ok if verification else None,
            [p[:TEXT_CAP] for p in (verification.problems if verification else [])][:5],
            outcome.message[:TEXT_CAP],
        )

    end = input.first + input.count if input.count else len(page.rows)
    outcomes = await bounded(page.rows[input.first : end], one, max(1, input.concurrency))
    return PageOutcome(input.page, outcomes, len(page.rows))
