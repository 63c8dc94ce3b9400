"""A rollback's preview, kept on the server page by page, and the messages of its paged
execution.

`PreviewWorkflow` walks the members of the namespace one visibility page at a time; an
activity describes each member once, previews the repair of the damaged ones from their
histories and keeps the rows of the page as the input of one `PreviewPageWorkflow`
(`<preview id>-p<k>`): a page is read back with one history read, by any process, for
as long as the namespace keeps closed workflows. The preview workflow itself keeps only
the cursor, the page count and the totals, and continues as new every
`pages_per_run` pages, so nothing in it grows with the member count. The paged
`RollbackWorkflow` then acts on exactly the previewed rows (workflows/rollback.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.contract import MEMBER_WORKFLOW
    from workflows.signatures import activity_signature
    from workflows.visibility import all_of

PREVIEW_ID_PREFIX = "rollback-preview-"
PAGE_SIZE = 50  # members listed per page: a page's rows stay far below 256 KB
MAX_PAGE_SIZE = 100
PAGES_PER_RUN = 50  # the preview continues as new after this many pages
LIST_CAP = 200  # not-repairable members and dropped approvals kept in the totals
PREVIEW_PAGE = "preview_page"
PREVIEW_STATUS = "preview_status"
RESET_PAGE = "reset_page"
QUERY_PREVIEW = "preview"
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# the rollback's own activities (find, reset, verify, page chunks): a reset that keeps
# failing stops after 10 tries instead of holding up the rollback for good
RESET_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)

# A member continuing as new at the moment of listing shows its old run closed and,
# for a moment, its new run not yet listed (visibility lags the history): runs that
# continued as new a little before the listing are listed too, and each member is
# looked at in its latest run (closed members and closed runs are never reset).
MEMBER_QUERY = (
    f"WorkflowType = '{MEMBER_WORKFLOW}' AND (ExecutionStatus = 'Running' OR "
    "(ExecutionStatus = 'ContinuedAsNew' AND CloseTime > '{since}'))"
)
VISIBILITY_LAG = timedelta(seconds=60)


def members_query(now: datetime, scope: str | None = None) -> str:
    """The visibility query a scan lists members with, fixed when the scan starts (the
    pages of one listing must all use the same query)."""
    since = (now - VISIBILITY_LAG).strftime("%Y-%m-%dT%H:%M:%SZ")
    full = all_of(MEMBER_QUERY.format(since=since), scope)
    assert full is not None
    return full


def page_id(preview_id: str, page: int) -> str:
    return f"{preview_id}-p{page:06d}"


@dataclass
class PreviewCounts:
    """What a preview found so far (one page's or the sum of all pages')."""

    total: int = 0  # members to look at, as visibility counted them at the start
    listed: int = 0
    scanned: int = 0  # looked at (running members, each once per page)
    affected: int = 0  # the bad build touched them: rows kept
    repairable: int = 0
    changing: int = 0  # the repair changes one of their compared fields
    points_before: int = 0
    points_after: int = 0
    lifetime_points_before: int = 0
    lifetime_points_after: int = 0
    points_moved: int = 0
    not_repairable: list[dict[str, Any]] = field(default_factory=list)  # first LIST_CAP
    approvals_dropped: list[dict[str, Any]] = field(default_factory=list)  # first LIST_CAP
    approvals_dropped_count: int = 0

    def add(self, other: PreviewCounts) -> None:
        for name in (
            "total",
            "listed",
            "scanned",
            "affected",
            "repairable",
            "changing",
            "points_before",
            "points_after",
            "lifetime_points_before",
            "lifetime_points_after",
            "points_moved",
            "approvals_dropped_count",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        room = LIST_CAP - len(self.not_repairable)
        self.not_repairable.extend(other.not_repairable[: max(0, room)])
        room = LIST_CAP - len(self.approvals_dropped)
        self.approvals_dropped.extend(other.approvals_dropped[: max(0, room)])


@dataclass
class PreviewInput:
    preview_id: str
    bad_build: str
    query: str  # members_query(...): the same for every page
    listed_from: str  # ISO time the query was made at (see recovery.pages._counted_here)
    page_size: int = PAGE_SIZE
    pages_per_run: int = PAGES_PER_RUN
    # carried over continue-as-new
    pages: int = 0
    cursor: str | None = None  # visibility's next page token, base64
    counts: PreviewCounts | None = None
    started_at: str | None = None


@dataclass
class PreviewState:
    """A preview as its readers see it (query `preview`, and the workflow's result)."""

    preview_id: str
    bad_build: str
    state: str  # previewing, done, failed
    pages: int
    counts: PreviewCounts
    started_at: str
    finished_at: str | None = None
    error: str | None = None
    query: str = ""

    @property
    def finished(self) -> bool:
        return self.state != "previewing"


@dataclass
class PageInput:
    preview_id: str
    bad_build: str
    query: str
    page: int  # the number the page gets if it keeps rows
    cursor: str | None
    listed_from: str
    page_size: int = PAGE_SIZE


@dataclass
class PageResult:
    counts: PreviewCounts
    stored: bool  # rows were kept as page `page`
    cursor: str | None  # None: the listing is complete


@dataclass
class PreviewPage:
    """The rows of one page, kept as the input of its PreviewPageWorkflow; the cursor and
    the counts with them, so a retried page reads what the first attempt kept."""

    preview_id: str
    bad_build: str
    page: int
    rows: list[dict[str, Any]]
    listed: int = 0
    scanned: int = 0
    total: int = 0
    next_cursor: str | None = None


@dataclass
class StatusInput:
    preview_id: str
    more_than: int  # return once the preview has more pages than this, or has finished
    wait_s: float = 30.0


@dataclass
class ResetPageInput:
    rollback_id: str
    preview_id: str
    page: int
    bad_build: str
    reason: str
    identity: str
    concurrency: int = 16
    first: int = 0  # the page's rows first .. first + count (count 0: to the end)
    count: int = 0


@dataclass
class MemberOutcome:
    member_id: str
    status: str  # reset, already-repaired, not-repairable
    verified: bool | None = None
    problems: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class PageOutcome:
    page: int
    members: list[MemberOutcome]
    rows: int = 0  # in the whole page


preview_page = activity_signature(
    PREVIEW_PAGE, PageInput, PageResult, "activities.rollback_pages.preview_page"
)
preview_status = activity_signature(
    PREVIEW_STATUS, StatusInput, PreviewState, "activities.rollback_pages.preview_status"
)
reset_page = activity_signature(
    RESET_PAGE, ResetPageInput, PageOutcome, "activities.rollback_pages.reset_page"
)


@workflow.defn(name="PreviewPageWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PreviewPageWorkflow:
    """A page of a preview: its input is the record; it has nothing to do."""

    @workflow.run
    async def run(self, page: PreviewPage) -> None:
        return None


@workflow.defn(name="PreviewWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PreviewWorkflow:
    @workflow.init
    def __init__(self, input: PreviewInput) -> None:
        self._input = input
        self._counts = input.counts or PreviewCounts()
        self._pages = input.pages
        self._state = "previewing"
        self._started = input.started_at or workflow.now().isoformat()
        self._finished: str | None = None
        self._error: str | None = None

    @workflow.run
    async def run(self, input: PreviewInput) -> PreviewState:
        cursor = input.cursor
        size = max(1, min(MAX_PAGE_SIZE, input.page_size))
        for _ in range(max(1, input.pages_per_run)):
            try:
                result = await workflow.execute_activity(
                    preview_page,
                    PageInput(
                        input.preview_id,
                        input.bad_build,
                        input.query,
                        self._pages,
                        cursor,
                        input.listed_from,
                        size,
                    ),
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RETRY,
                )
            except ActivityError as error:  # e.g. a query the server refuses
                cause = error.cause or error
                return self._finish("failed", str(getattr(cause, "message", cause)))
            self._counts.add(result.counts)
            self._pages += result.stored
            cursor = result.cursor
            if not cursor:
                return self._finish("done")
        workflow.continue_as_new(
            memo={"bad_build": input.bad_build},
            arg=dataclasses.replace(
                input,
                pages=self._pages,
                cursor=cursor,
                counts=self._counts,
                started_at=self._started,
            ),
        )

    def _finish(self, state: str, error: str | None = None) -> PreviewState:
        self._state, self._error = state, error
        self._finished = workflow.now().isoformat()
        return self.preview()

    @workflow.query(name=QUERY_PREVIEW)
    def preview(self) -> PreviewState:
        return PreviewState(
            preview_id=self._input.preview_id,
            bad_build=self._input.bad_build,
            state=self._state,
            pages=self._pages,
            counts=self._counts,
            started_at=self._started,
            finished_at=self._finished,
            error=self._error,
            query=self._input.query,
        )


@dataclass
class PagedRun:
    """A paged rollback's cursor and totals, carried over its continue-as-new."""

    preview_id: str
    next_page: int = 0  # pages before it are started (and, at a continue-as-new, done)
    pages_done: int = 0
    pages_per_run: int = 20
    counts: dict[str, int] = field(default_factory=dict)
    verified_ok: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # first LIST_CAP
    mismatch_count: int = 0
    not_repairable: list[dict[str, Any]] = field(default_factory=list)  # first LIST_CAP
    reset_total: int = 0
    paused: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    runs: int = 1
    preview: PreviewState | None = None  # as last read
    # the scan after the last page: members still carrying the bad build
    after_preview: PreviewState | None = None

    def after_summary(self) -> dict[str, Any] | None:
        after = self.after_preview
        if after is None:
            return None
        return {
            "preview_id": after.preview_id,
            "affected": after.counts.affected,
            "repairable": after.counts.repairable,
            "not_repairable": after.counts.affected - after.counts.repairable,
        }

    def record(self, outcome: PageOutcome) -> list[str]:
        """Count a finished page; the members it reset."""
        reset = []
        for member in outcome.members:
            self.counts[member.status] = self.counts.get(member.status, 0) + 1
            if member.status == "reset":
                reset.append(member.member_id)
            if member.status == "not-repairable" and len(self.not_repairable) < LIST_CAP:
                self.not_repairable.append(
                    {"member_id": member.member_id, "reason": member.message}
                )
            if member.verified:
                self.verified_ok += 1
            elif member.verified is False:
                self.mismatch_count += 1
                if len(self.mismatches) < LIST_CAP:
                    self.mismatches.append(
                        {"member_id": member.member_id, "problems": member.problems}
                    )
        self.reset_total += len(reset)
        return reset
