"""Messages between the rollback workflow and its activities (one dataclass in, one out).

Activity names are constants here so the workflow (which imports no effects) and the
activities (which import this module) agree without string literals scattered around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows.rollback_pages import PagedRun
from workflows.signatures import activity_signature

FIND_DAMAGE = "find_damage"
RESET_MEMBER = "reset_member"
RESET_MEMBERS = "reset_members"
VERIFY_MEMBER = "verify_member"
RECORD_AUDIT = "record_audit"
# signals and the query of RollbackWorkflow (runtime.releases controls a rollback by them)
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_CANCEL = "cancel"
QUERY_PROGRESS = "progress"

COMPARED_FIELDS = ("points", "tier", "lifetime_points", "events_processed", "events_rejected")


@dataclass
class ResetPoint:
    build_id: str
    run_id: str
    event_id: int  # first workflow task completed by the build
    expires_at: str | None = None
    resettable: bool = True


@dataclass
class Damage:
    """A member the bad build touched; `problem` says why it cannot be repaired."""

    member_id: str
    run_id: str
    point: ResetPoint | None = None
    problem: str | None = None


@dataclass
class FindDamageInput:
    bad_build: str
    query: str | None = None


@dataclass
class FindDamageResult:
    scanned: int
    damaged: list[Damage] = field(default_factory=list)


@dataclass
class ResetInput:
    member_id: str
    bad_build: str
    request_id: str
    reason: str
    identity: str
    clean_run: str | None = None  # the current run, if the preview found a reset loses nothing
    expected: dict[str, Any] | None = None  # the preview's "after": verify right after the reset


@dataclass
class VerifyInput:
    member_id: str
    bad_build: str
    anchor_run_id: str | None  # the run the reset created
    expected: dict[str, Any] | None = None  # the preview's "after", when known


@dataclass
class VerifyOutcome:
    member_id: str
    ok: bool
    build_id: str | None
    live: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    matches_preview: bool | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class ResetOutcome:
    member_id: str
    status: str  # reset, already-repaired, not-repairable
    new_run_id: str | None = None
    redelivered: int = 0
    message: str = ""
    verification: VerifyOutcome | None = None  # when the reset was given the expected state


@dataclass
class ResetBatch:
    members: list[ResetInput]


@dataclass
class ResetBatchOutcome:
    outcomes: list[ResetOutcome]


@dataclass
class AuditRecord:
    action: str
    actor: str
    reason: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RollbackInput:
    bad_build: str
    reason: str
    actor: str
    rate_per_second: float = 50.0
    concurrency: int = 32
    query: str | None = None  # restrict to members matching a visibility query
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # preview "after"
    # member -> its current run at the preview, where the preview found a reset loses nothing
    clean: dict[str, str] = field(default_factory=dict)
    # paged (0.4.3 on): act on exactly the rows of this durable preview, page by page,
    # continuing as new every `pages_per_run` pages; `paged` is what a run carries over
    preview_id: str | None = None
    pages_per_run: int = 20
    paged: PagedRun | None = None


@dataclass
class MemberProgress:
    member_id: str
    status: str = "pending"  # pending, resetting, reset, already-repaired, cancelled,
    # not-repairable
    new_run_id: str | None = None
    redelivered: int = 0
    message: str = ""
    verified: bool | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class RollbackProgress:
    bad_build: str
    state: str  # planning, running, paused, verifying, done, cancelled
    total: int
    counts: dict[str, int]
    verified_ok: int
    mismatches: list[dict[str, Any]]
    not_repairable: list[dict[str, Any]]
    scanned: int
    seconds: dict[str, float] = field(default_factory=dict)  # time spent in each state
    # paged rollbacks: the preview acted on, pages done of pages previewed so far, all
    # mismatches (`mismatches` lists the first 200), why it stopped, and the scan after
    # the last page (members still carrying the bad build: damaged after the preview,
    # or not repairable), itself a preview to confirm and execute
    preview_id: str | None = None
    pages_done: int = 0
    pages: int = 0
    mismatch_count: int = 0
    error: str | None = None
    after_preview: dict[str, Any] | None = None


# Typed references for the workflow: signatures only. The worker registers the
# activities of `activities.rollback` under the same names.
find_damage = activity_signature(
    FIND_DAMAGE, FindDamageInput, FindDamageResult, "activities.rollback.find_damage"
)
reset_member = activity_signature(
    RESET_MEMBER, ResetInput, ResetOutcome, "activities.rollback.reset_member"
)
reset_members = activity_signature(
    RESET_MEMBERS, ResetBatch, ResetBatchOutcome, "activities.rollback.reset_members"
)
verify_member = activity_signature(
    VERIFY_MEMBER, VerifyInput, VerifyOutcome, "activities.rollback.verify_member"
)
