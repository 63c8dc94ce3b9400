"""A rollback's preview, shared by the CLI and the wizard: computed by workers, kept on
the server page by page (workflows/rollback_pages.py), read back here.

`preview_rollback` starts a preview (or follows one already started), reports how far it
is as it goes and returns the report the tables and the CLI show: totals over every
member, rows for the first `max_rows`. The rollback then acts on exactly the preview's
rows, by its id, whichever process (or a later run of the app) starts it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus

from recovery import pages
from recovery.found import if_found
from recovery.scan import DONE, FINDING, PREVIEWING, ScanProgress
from runtime.rollback_status import heartbeat_progress, planning_progress
from workflows.ids import check_build_id
from workflows.rollback import RollbackProgress
from workflows.rollback_pages import (
    PAGE_SIZE,
    PAGES_PER_RUN,
    PREVIEW_ID_PREFIX,
    PREVIEW_PAGE,
    PreviewCounts,
    PreviewInput,
    PreviewState,
    PreviewWorkflow,
    members_query,
)

MAX_ROWS = 5_000
NO_WORKER_S = 5.0  # a preview that has not listed anything by then: is a worker there?
MAX_ID = 300  # rows a report carries; the totals cover every member
FOLLOW_S = 0.25


class PreviewError(Exception):
    """A preview that cannot be used (unknown, of another build, failed); one line."""


@dataclass(frozen=True)
class PreviewTotals:
    """Points and lifetime points over the repairable members, before and after, and
    the money at stake at `rate` (currency per point, as the liability report values
    points): what the repair moves, member by member, and what it does to the
    program's outstanding liability."""

    points_before: int = 0
    points_after: int = 0
    lifetime_points_before: int = 0
    lifetime_points_after: int = 0
    points_moved: int = 0  # the sum over members of |after - before|
    rate: float = 0.0

    @property
    def value_moved(self) -> float:
        """Money the repair moves between the program and its members (either way)."""
        return round(self.points_moved * self.rate, 2)

    @property
    def liability_change(self) -> float:
        """What the repair adds to (or, negative, takes off) the outstanding liability."""
        return round((self.points_after - self.points_before) * self.rate, 2)

    def stake_text(self) -> str:
        """One line for people: the money at stake."""
        return (
            f"money at stake {self.value_moved:,.2f} ({self.points_moved:,} points at "
            f"{self.rate:g} a point); liability {self.liability_change:+,.2f}"
        )


@dataclass(frozen=True)
class RollbackPreview:
    """What a rollback of `bad_build` would do, computed from history (touching nothing)
    and kept on the server as `preview_id`. `members` are the tables' records, one per
    affected member up to MAX_ROWS (member_id, before, after, changes, ledger_removed,
    ledger_added, redeliver, problem, clean_run, decisions, as_of); the counts and
    totals cover all of them."""

    bad_build: str
    scanned: int
    affected: int
    repairable: int
    not_repairable: list[dict[str, str]]  # member_id, reason (the first 200)
    changing: int
    # people's decisions the repair re-sends whose proposal will not come back
    approvals_dropped: list[dict[str, Any]]
    totals: PreviewTotals
    members: list[dict[str, Any]]
    seconds: dict[str, float]
    preview_id: str = ""
    pages: int = 0
    state: str = "done"
    rows_left_out: int = 0  # affected members not in `members` (over MAX_ROWS)
    query: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"]["value_moved"] = self.totals.value_moved
        data["totals"]["liability_change"] = self.totals.liability_change
        return data


def new_preview_id(build: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{PREVIEW_ID_PREFIX}{build}-{stamp}-{_token()}"


def _token() -> str:
    import secrets

    return secrets.token_hex(3)


async def start_preview(
    client: Client,
    task_queue: str,
    build: str,
    query: str | None = None,
    *,
    page_size: int = PAGE_SIZE,
    pages_per_run: int = PAGES_PER_RUN,
) -> str:
    """Start the durable preview of a rollback of `build` over the members `query`
    scopes; its id. `page_size` members are listed per page (at most MAX_PAGE_SIZE)."""
    check_build_id(build)
    preview_id = new_preview_id(build)
    now = datetime.now(UTC)
    full = members_query(now, query)
    await client.start_workflow(
        PreviewWorkflow.run,
        PreviewInput(preview_id, build, full, now.isoformat(), page_size, pages_per_run),
        id=preview_id,
        task_queue=task_queue,
        memo={"bad_build": build},  # readable with no worker (see `check_preview`)
    )
    return preview_id


async def check_preview(client: Client, preview_id: str, build: str) -> PreviewState | None:
    """Refuse (PreviewError) a preview that does not exist, is of another build or
    failed; its state when it has finished (None while it runs). Needs no worker."""
    if not preview_id.startswith(PREVIEW_ID_PREFIX) or len(preview_id) > MAX_ID:
        raise PreviewError(f"{preview_id[:80]!r} is not a preview id (rollback-preview-...)")
    handle = client.get_workflow_handle(preview_id, result_type=PreviewState)
    description = await if_found(handle.describe())
    if description is None:
        raise PreviewError(f"no preview {preview_id!r} (or it passed retention)")
    if description.workflow_type != "PreviewWorkflow":  # a workflow that only looks like one
        raise PreviewError(f"{preview_id} is a {description.workflow_type}, not a preview")
    of = (await description.memo()).get("bad_build")
    if of != build:
        raise PreviewError(f"preview {preview_id} is of build {of}, not {build}")
    if description.status != WorkflowExecutionStatus.COMPLETED:
        if description.status != WorkflowExecutionStatus.RUNNING:
            ended = description.status.name.lower() if description.status else "unknown"
            raise PreviewError(f"preview {preview_id} ended: {ended}")
        return None
    state = await handle.result()
    if state.state == "failed":
        raise PreviewError(f"preview {preview_id} failed: {state.error}")
    return state


async def preview_state(client: Client, preview_id: str, build: str) -> PreviewState:
    """The preview `preview_id`, checked to be one of `build`'s (PreviewError if not)."""
    state = await pages.preview_state(client, preview_id)
    if state is None:
        raise PreviewError(f"no preview {preview_id!r} (or it passed retention)")
    if state.bad_build != build:
        raise PreviewError(f"preview {preview_id} is of build {state.bad_build}, not {build}")
    if state.state == "failed":
        raise PreviewError(f"preview {preview_id} failed: {state.error}")
    return state


def scan_of(state: PreviewState, beat: ScanProgress | None, scan: ScanProgress) -> None:
    """Bring `scan` to where the preview is: its finished pages, plus the page under
    way as its activity last reported (counts never go back: a page that just finished
    may still show in the beat of the next one)."""
    c, b = state.counts, beat or ScanProgress()
    scan.total = max(scan.total, c.total, b.total)
    scan.listed = max(scan.listed, c.listed + b.listed)
    scan.scanned = max(scan.scanned, c.scanned + b.scanned)
    scan.found = max(scan.found, c.affected + b.found)
    scan.previewed = max(scan.previewed, c.affected + b.previewed)
    stage = DONE if state.finished else PREVIEWING if scan.found else FINDING
    if state.finished:  # the finished preview's own counts, exactly
        scan.listed, scan.scanned, scan.total = c.listed, c.scanned, c.scanned
        scan.found = scan.previewed = c.affected
    if stage != scan.stage:
        scan.enter(stage)


async def _check_worker(client: Client, preview_id: str) -> None:
    """PreviewError when no worker polls the preview's task queue (it would wait for one
    for good); the preview stays, to go on when a worker starts."""
    description = await client.get_workflow_handle(preview_id).describe()
    queue = description.task_queue
    listing = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    if not listing.pollers:
        raise PreviewError(
            f"no worker polls task queue {queue}: start one (loyalty-desk worker); preview "
            f"{preview_id} goes on then (see it with --dry-run --preview {preview_id})"
        )


async def follow_preview(
    client: Client, preview_id: str, build: str, progress: ScanProgress | None = None
) -> PreviewState:
    """Wait for the preview to finish, keeping `progress` up to date."""
    scan = progress if progress is not None else ScanProgress()
    started, checked = asyncio.get_running_loop().time(), False
    while True:
        state = await preview_state(client, preview_id, build)
        waited = asyncio.get_running_loop().time() - started
        if not checked and waited > NO_WORKER_S and not state.counts.listed:
            checked = True
            await _check_worker(client, preview_id)
        beat = (
            None if state.finished else await heartbeat_progress(client, preview_id, PREVIEW_PAGE)
        )
        scan_of(state, beat, scan)
        if state.finished:  # and its run returned (a rollback started now sees it done)
            return await client.get_workflow_handle(preview_id, result_type=PreviewState).result()
        await asyncio.sleep(FOLLOW_S)


async def preview_rollback(
    client: Client,
    build: str,
    query: str | None = None,
    *,
    task_queue: str,
    rate: float | None = None,
    progress: ScanProgress | None = None,
    preview_id: str | None = None,
    max_rows: int = MAX_ROWS,
) -> RollbackPreview:
    """Which members the bad build touched and what a repair would make of each:
    a preview computed by the workers (started here unless `preview_id` names one),
    touching no live workflow, kept on the server for the rollback to act on."""
    from runtime.liability import DEFAULT_RATE

    check_build_id(build)
    started = asyncio.get_running_loop().time()
    if preview_id is None:
        preview_id = await start_preview(client, task_queue, build, query)
    else:  # one named by a person: refused unless it is a preview of this build
        await check_preview(client, preview_id, build)
    state = await follow_preview(client, preview_id, build, progress)
    rows: list[dict[str, Any]] = []
    for k in range(state.pages):
        if len(rows) >= max_rows:
            break
        page = await pages.read_page(client, preview_id, k)
        if page is None:
            raise PreviewError(f"page {k} of preview {preview_id} is gone (retention)")
        rows.extend(page.rows[: max_rows - len(rows)])
    return report_of(state, rows, DEFAULT_RATE if rate is None else rate, started)


# what a report takes from the preview's counts as they are
COUNTED = ("scanned", "affected", "repairable", "not_repairable", "changing", "approvals_dropped")
TOTALLED = (
    "points_before",
    "points_after",
    "lifetime_points_before",
    "lifetime_points_after",
    "points_moved",
)


def report_of(
    state: PreviewState, rows: list[dict[str, Any]], rate: float, started: float
) -> RollbackPreview:
    c: PreviewCounts = state.counts
    return RollbackPreview(
        bad_build=state.bad_build,
        **{k: getattr(c, k) for k in COUNTED},
        totals=PreviewTotals(**{k: getattr(c, k) for k in TOTALLED}, rate=rate),
        members=rows,
        seconds={
            "preview": seconds_of(state),
            "total": round(asyncio.get_running_loop().time() - started, 3),
        },
        preview_id=state.preview_id,
        pages=state.pages,
        state=state.state,
        rows_left_out=c.affected - len(rows),
        query=state.query,
    )


def seconds_of(state: PreviewState) -> float:
    """How long the preview took (0 while it runs)."""
    if not state.finished_at:
        return 0.0
    return round(
        (
            datetime.fromisoformat(state.finished_at) - datetime.fromisoformat(state.started_at)
        ).total_seconds(),
        3,
    )


async def preview_scan(client: Client, preview_id: str) -> ScanProgress | None:
    """How far a preview is, with its rate and the time left (None: no such preview)."""
    state = await pages.preview_state(client, preview_id)
    if state is None:
        return None
    beat = None if state.finished else await heartbeat_progress(client, preview_id, PREVIEW_PAGE)
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(state.started_at)).total_seconds()
    found = state.counts.affected + (beat.found if beat else 0)
    stage = DONE if state.finished else PREVIEWING if found else FINDING
    scan = ScanProgress.from_json({"stage": stage, "elapsed_s": elapsed, "stage_s": elapsed})
    scan_of(state, beat, scan)
    return scan


async def planning_scan(
    client: Client, build: str, progress: RollbackProgress
) -> ScanProgress | None:
    """How far a rollback still planning is in finding its members: its preview's
    progress (paged rollbacks), or its find activity's last heartbeat (earlier ones)."""
    if progress.preview_id:
        return await preview_scan(client, progress.preview_id)
    return await planning_progress(client, build)
