"""The audit log: one perpetual workflow that records every operator action.

Living in Temporal, it is shared by every app and CLI on the cluster and cannot be
edited after the fact: the history is the record. Each entry gets a sequence number
and a hash chaining it to the one before (`entry_hash`), computed here, so it is the
same on every replay and for every reader.

Each run keeps at most RECORDS_PER_RUN records. Before it continues as new it hands
its entries to the archive activity (activities/audit_archive.py: an append-only JSON
Lines file), because the namespace's retention deletes closed runs; the new run starts
from the chain's last sequence number and hash, and keeps one anchor per archived
batch (its range, last hash and where it went), so a reader can check the archive
against the anchors held in the open run, which retention never deletes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, VersioningBehavior

AUDIT_WORKFLOW_ID = "loyalty-desk-audit"
SIGNAL_RECORD = "record"
AUDIT_WORKFLOW_TYPE = "AuditWorkflow"
RECORDS_PER_RUN = 1_000
ARCHIVE_ACTIVITY = "audit_archive"
PATCH_CHAIN = "audit-chain-archive"  # runs before it continued as new with no archive
GENESIS = ""  # the `prev` of the chain's first entry


@dataclass
class AuditEntry:
    action: str  # release.set-current, rollback.start, approval.approve, ...
    actor: str  # who: OS user @ host, or the workflow that acted
    reason: str  # why
    subject: str  # the target: a build, a rollback id, a member, a proposal
    details: dict[str, Any] = field(default_factory=dict)
    at: str = ""  # when: filled in by the audit workflow (server time)
    outcome: str = ""  # what came of it: applied, refused: ..., approved, ...
    # the chain, filled in by the audit workflow (a sender's values are ignored)
    seq: int = 0
    prev: str = ""
    hash: str = ""


def decision_entry(
    proposal_id: str,
    digest: str | None,
    approve: bool,
    actor: str,
    reason: str,
    outcome: str,
    policy: str | None = None,
) -> AuditEntry:
    """One approve or reject of a proposal (by a person, or by a policy they chose)."""
    details: dict[str, Any] = {"digest": digest}
    if policy:
        details["policy"] = policy
    action = "approval.approve" if approve else "approval.reject"
    return AuditEntry(action, actor, reason.strip(), proposal_id, details, outcome=outcome)


def policy_entry(
    policy: str,
    approve: bool,
    actor: str,
    reason: str,
    matched: int,
    decided: list[str],
    failed: list[str],
) -> AuditEntry:
    """A policy decision: the policy, and the ids it decided and failed to decide."""
    decided, failed = sorted(decided), sorted(failed)
    return AuditEntry(
        "approval.policy",
        actor,
        reason.strip(),
        policy,
        {
            "decision": "approve" if approve else "reject",
            "matched": matched,
            "decided": decided,
            "failed": failed,
        },
        outcome=f"{len(decided)} decided, {len(failed)} failed",
    )


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: every field but the hash, in a fixed form."""
    body = {
        "seq": entry["seq"],
        "at": entry["at"],
        "actor": entry["actor"],
        "action": entry["action"],
        "target": entry["subject"],
        "reason": entry["reason"],
        "outcome": entry.get("outcome") or "",
        "details": entry.get("details") or {},
        "prev": entry["prev"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


@dataclass
class ArchiveAnchor:
    """One archived batch: its sequence range, its last hash, where it was written."""

    first: int
    last: int
    last_hash: str
    where: str


@dataclass
class ArchiveBatch:
    entries: list[AuditEntry]


@activity.defn(name=ARCHIVE_ACTIVITY)
async def archive_batch(batch: ArchiveBatch) -> str:
    """Signature only; the worker registers `activities.audit_archive` (its `archive`),
    which appends the batch to the archive file and says where."""
    raise NotImplementedError


@dataclass
class AuditCarry:
    """What a run hands the next one: the chain's end, the anchors, entries not archived."""

    seq: int = 0
    prev: str = GENESIS
    anchors: list[ArchiveAnchor] = field(default_factory=list)
    entries: list[AuditEntry] = field(default_factory=list)
    records_per_run: int = RECORDS_PER_RUN  # smaller in tests


ARCHIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)  # no maximum: the run does not continue as new until its batch is safe


@workflow.defn(name=AUDIT_WORKFLOW_TYPE, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AuditWorkflow:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._seq = 0
        self._prev = GENESIS
        self._anchors: list[ArchiveAnchor] = []
        self._limit = RECORDS_PER_RUN

    @workflow.run
    async def run(self, carry: AuditCarry | None = None) -> None:
        if carry is not None:
            # entries signalled before this line (a signal-with-start) chain after these
            received, self._entries = self._entries, list(carry.entries)
            self._seq, self._prev, self._anchors = carry.seq, carry.prev, list(carry.anchors)
            self._limit = carry.records_per_run
            for entry in received:
                self._chain(entry)
        await workflow.wait_condition(
            lambda: (
                len(self._entries) >= self._limit or workflow.info().is_continue_as_new_suggested()
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not workflow.patched(PATCH_CHAIN):
            workflow.continue_as_new()
        batch = list(self._entries)
        if batch:
            where: str = await workflow.execute_activity(
                archive_batch,
                ArchiveBatch(batch),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=ARCHIVE_RETRY,
            )
            self._anchors.append(ArchiveAnchor(batch[0].seq, batch[-1].seq, batch[-1].hash, where))
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            AuditCarry(
                self._seq, self._prev, self._anchors, self._entries[len(batch) :], self._limit
            )
        )

    @workflow.signal(name=SIGNAL_RECORD)
    def record(self, entry: AuditEntry) -> None:
        entry.at = workflow.now().isoformat().replace("+00:00", "Z")
        self._chain(entry)

    def _chain(self, entry: AuditEntry) -> None:
        self._seq += 1
        entry.seq, entry.prev = self._seq, self._prev
        entry.outcome = entry.outcome or ""
        entry.hash = entry_hash(entry.__dict__)
        self._prev = entry.hash
        self._entries.append(entry)

    @workflow.query(name="entries")
    def entries(self) -> list[AuditEntry]:
        return list(self._entries)

    @workflow.query(name="anchors")
    def anchors(self) -> list[ArchiveAnchor]:
        return list(self._anchors)
