"""The audit log: one perpetual workflow that records every operator action.

Living in Temporal, it is shared by every app and CLI on the cluster and cannot be
edited after the fact: the history is the record. Each run keeps at most
RECORDS_PER_RUN records and then continues as new with none; `loyalty-desk audit`
reads older runs from their histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

AUDIT_WORKFLOW_ID = "loyalty-desk-audit"
SIGNAL_RECORD = "record"
RECORDS_PER_RUN = 1_000


@dataclass
class AuditEntry:
    action: str  # release.set-current, rollback.start, rollback.reset, approval.decide, ...
    actor: str  # who: OS user @ host, or the workflow that acted
    reason: str  # why
    subject: str  # what: a build, a rollback id, a member
    details: dict[str, Any] = field(default_factory=dict)
    at: str = ""  # when: filled in by the audit workflow (server time)


@workflow.defn(name="AuditWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AuditWorkflow:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(
            lambda: (
                len(self._entries) >= RECORDS_PER_RUN
                or workflow.info().is_continue_as_new_suggested()
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new()

    @workflow.signal(name=SIGNAL_RECORD)
    def record(self, entry: AuditEntry) -> None:
        entry.at = workflow.now().isoformat().replace("+00:00", "Z")
        self._entries.append(entry)

    @workflow.query(name="entries")
    def entries(self) -> list[AuditEntry]:
        return list(self._entries)
