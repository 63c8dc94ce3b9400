"""How far a rollback is, in types the CLI and the window share (light: no Temporal client,
so the window can import it at startup)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from recovery.found import if_found
from recovery.scan import ScanProgress

if TYPE_CHECKING:
    from temporalio.client import Client

    from workflows.rollback import RollbackProgress


class RollbackState(StrEnum):
    """Where a rollback is (RollbackProgress.state, a string in the workflow's payloads)."""

    PLANNING = "planning"
    RUNNING = "running"
    PAUSED = "paused"
    VERIFYING = "verifying"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"  # a paged rollback whose preview failed or whose page is gone

    @property
    def finished(self) -> bool:
        return self in (RollbackState.DONE, RollbackState.CANCELLED, RollbackState.FAILED)


class MemberState(StrEnum):
    """Where one member of a rollback is (the keys of RollbackProgress.counts)."""

    PENDING = "pending"
    RESETTING = "resetting"
    RESET = "reset"
    ALREADY_REPAIRED = "already-repaired"
    CANCELLED = "cancelled"
    NOT_REPAIRABLE = "not-repairable"


# members the rollback has not finished with: a member that cannot be repaired is never
# "done" (the CLI once counted it done, the window did not; the window was right)
NOT_YET_DONE = frozenset({MemberState.PENDING, MemberState.RESETTING, MemberState.NOT_REPAIRABLE})


@dataclass(frozen=True)
class RollbackCount:
    """How far a rollback is, counted the same way by the CLI and the window."""

    state: RollbackState
    done: int  # members reset, already repaired or cancelled
    repairable: int  # members the rollback can repair (all but the not-repairable)

    @classmethod
    def of(cls, progress: RollbackProgress) -> RollbackCount:
        counts = progress.counts
        return cls(
            state=RollbackState(progress.state),
            done=sum(v for k, v in counts.items() if k not in NOT_YET_DONE),
            repairable=progress.total - counts.get(MemberState.NOT_REPAIRABLE, 0),
        )


async def planning_progress(client: Client, build: str) -> ScanProgress | None:
    """How far the latest rollback of `build` is in finding the damage (its find
    activity's last heartbeat); None when it is past that, or no beat came yet."""
    from runtime.releases import rollback_id
    from workflows.rollback_messages import FIND_DAMAGE

    return await heartbeat_progress(client, rollback_id(build), FIND_DAMAGE)


async def heartbeat_progress(
    client: Client, workflow_id: str, activity_name: str
) -> ScanProgress | None:
    """The ScanProgress in the last heartbeat of the workflow's pending `activity_name`
    (None: no such workflow, activity or beat)."""
    description = await if_found(client.get_workflow_handle(workflow_id).describe())
    if description is None:
        return None
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name != activity_name or not pending.heartbeat_details.payloads:
            continue
        details = await client.data_converter.decode(pending.heartbeat_details.payloads)
        if details and isinstance(details[0], dict):
            return ScanProgress.from_json(details[0])
    return None
