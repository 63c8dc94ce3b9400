"""How far a rollback is, counted once for the CLI and the window (runtime.rollback_status).

The CLI used to count a member that cannot be repaired as done (it excluded only pending
and resetting), so its "done/total" could reach the total while members were still
pending; the wizard excluded not-repairable members too. The wizard's count is the one
kept."""

from __future__ import annotations

import pytest

from runtime.rollback_status import RollbackCount, RollbackState
from workflows.rollback import RollbackProgress


def progress(state: str, counts: dict[str, int]) -> RollbackProgress:
    return RollbackProgress(
        bad_build="2.0",
        state=state,
        total=sum(counts.values()),
        counts=counts,
        verified_ok=0,
        mismatches=[],
        not_repairable=[],
        scanned=10,
    )


def test_a_member_that_cannot_be_repaired_is_not_counted_done() -> None:
    count = RollbackCount.of(
        progress("running", {"reset": 2, "pending": 1, "resetting": 1, "not-repairable": 3})
    )
    assert count == RollbackCount(state=RollbackState.RUNNING, done=2, repairable=4)


def test_every_member_finished_counts_as_done_of_the_repairable() -> None:
    count = RollbackCount.of(
        progress(
            "cancelled", {"reset": 1, "already-repaired": 1, "cancelled": 2, "not-repairable": 1}
        )
    )
    assert (count.done, count.repairable) == (4, 4)
    assert count.state.finished


@pytest.mark.parametrize(
    ("state", "finished"),
    [
        ("planning", False),
        ("running", False),
        ("paused", False),
        ("verifying", False),
        ("done", True),
        ("cancelled", True),
    ],
)
def test_only_done_and_cancelled_are_finished(state: str, finished: bool) -> None:
    assert RollbackState(state).finished is finished


def test_an_unknown_state_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError):
        RollbackState("exploded")
