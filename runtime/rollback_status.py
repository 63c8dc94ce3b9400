"""How far a rollback is, in types the CLI and the window share (light: no Temporal client,
so the window can import it at startup)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.rollback import RollbackProgress


class RollbackState(StrEnum):
    """Where a rollback is (RollbackProgress.state, a string in the workflow's payloads)."""

    PLANNING = "planning"
    RUNNING = "running"
    PAUSED = "paused"
    VERIFYING = "verifying"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RollbackState.DONE, RollbackState.CANCELLED)


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
