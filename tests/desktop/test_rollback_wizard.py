"""The rollback wizard on a real server: a drill damages members, the wizard previews,
executes, pauses, is closed and reopened (the rollback goes on: it is a workflow), resumes
and verifies."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import qasync

from desktop.asyncutil import wait_until
from desktop.rollback_wizard import AFFECTED, EXECUTE, PREVIEW, VERIFY, RollbackWizard
from runtime import deployment as releases
from tests.conftest import Deployment
from tests.kit.desk import ROLLBACK_TIMEOUT_S, Members, connected_session, worker
from workflows.drill import drill_build_id

pytestmark = pytest.mark.slow


def test_pause_close_reopen_resume_and_verify(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    target = deployment.target
    release = f"5.{uuid.uuid4().hex[:6]}"
    bad = drill_build_id(f"{release}.1", "zero-on-trip")
    fixed = f"{release}.2"

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        members = Members(client, target, 6)
        async with worker(client, target, f"{release}.0"):
            await members.start()
            await members.feed("a", 6, day=1)
            async with worker(client, target, f"{release}.1", drill="zero-on-trip"):
                await releases.set_current(client, target.deployment, bad)
                damaged = await members.feed("b", 8, day=5)
                assert any(damaged[m]["points"] != members.truth(m)["points"] for m in members.ids)
                async with worker(client, target, fixed):
                    await releases.set_current(client, target.deployment, fixed)

                    wizard = RollbackWizard(session=session)
                    qtbot.addWidget(wizard)
                    wizard.show()
                    wizard.set_versions(
                        [
                            {"build_id": b, "status": s, "drill": d, "members": 0}
                            for b, s, d in (
                                (f"{release}.0", "draining", None),
                                (bad, "draining", "zero-on-trip"),
                                (fixed, "current", None),
                            )
                        ]
                    )
                    # drills first, the current build not offered
                    assert wizard.build_combo.itemData(0) == bad
                    assert wizard.build_combo.findData(fixed) == -1
                    await wizard._on_next_button_clicked()
                    assert wizard.step == AFFECTED
                    assert wizard.affected_model.rowCount() == 6
                    await wizard._on_next_button_clicked()
                    assert wizard.step == PREVIEW
                    report = wizard.report
                    assert report is not None
                    truth_total = sum(members.truth(m)["points"] for m in members.ids)
                    assert report.totals.points_after == truth_total
                    assert f"→ {truth_total:,}" in wizard.totals_label.text()
                    # the money at stake, at the default rate of the liability report
                    moved = sum(
                        abs(r["after"]["points"] - r["before"]["points"]) for r in report.members
                    )
                    assert moved > 0 and report.totals.points_moved == moved
                    assert f"money at stake {moved * 0.01:,.2f}" in wizard.totals_label.text()
                    await wizard._on_next_button_clicked()
                    assert wizard.step == EXECUTE

                    wizard.rate_spin.setValue(1)  # one reset a second: slow enough to pause
                    wizard.reason_edit.setText("drill rehearsal")
                    await wizard._on_execute_button_clicked()
                    await wizard.control("pause")
                    await wait_until(lambda: _paused_and_still(wizard), timeout=60)
                    held = dict(wizard.progress.counts)  # type: ignore[union-attr]
                    assert held.get("pending", 0) > 0, held
                    assert not wizard.pause_button.isEnabled()
                    assert wizard.resume_button.isEnabled()
                    await asyncio.wait(wizard.stop(), timeout=10)  # the app closes
                    wizard.close()
                    await session.stop()

                    # the app is reopened: a new session and wizard find the rollback
                    reopened = await connected_session(target)
                    again = RollbackWizard(session=reopened)
                    qtbot.addWidget(again)
                    again.show()
                    await wait_until(lambda: again.progress is not None, timeout=30)
                    assert again.step == EXECUTE and again.build == bad
                    assert again.progress is not None
                    assert again.progress.state == "paused"
                    assert again.progress.counts == held  # nothing moved while paused
                    assert again.resume_button.isEnabled()
                    await again._on_cancel_button_clicked()  # a cancel needs a reason
                    assert again.message.text() == (
                        "Cancelling needs a reason: write it in the Reason field."
                    )

                    await again._on_resume_button_clicked()
                    await wait_until(lambda: again.step == VERIFY, timeout=ROLLBACK_TIMEOUT_S)
                    final = again.progress
                    assert final is not None and final.state == "done"
                    assert final.verified_ok == 6 and final.mismatches == []
                    assert again.verify_summary.text() == (
                        f"Rollback of {bad} done: 6 members repaired and verified, "
                        "0 mismatches, 0 not repairable."
                    )
                    await members.assert_repaired(fixed)
                    await reopened.stop()

    qloop.run_until_complete(scenario())


def _paused_and_still(wizard: RollbackWizard) -> bool:
    progress = wizard.progress
    return (
        progress is not None
        and progress.state == "paused"
        and progress.counts.get("resetting", 0) == 0
    )


def test_a_mismatch_after_the_repair_is_shown_with_member_and_field(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """The members move, after the reset, to a build that is broken too: the wizard's
    verification page names each member and the field that differs."""
    target = deployment.target
    release = f"6.{uuid.uuid4().hex[:6]}"
    bad = drill_build_id(f"{release}.1", "zero-on-trip")
    broken_fix = drill_build_id(f"{release}.2", "double-points")

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        members = Members(client, target, 2)
        async with worker(client, target, f"{release}.0"):
            await members.start()
            await members.feed("a", 6, day=1)
            async with worker(client, target, f"{release}.1", drill="zero-on-trip"):
                await releases.set_current(client, target.deployment, bad)
                await members.feed("b", 8, day=5)
                async with worker(client, target, f"{release}.2", drill="double-points"):
                    await releases.set_current(client, target.deployment, broken_fix)
                    wizard = RollbackWizard(session=session)
                    qtbot.addWidget(wizard)
                    wizard.show()
                    wizard.set_versions(
                        [
                            {
                                "build_id": bad,
                                "status": "draining",
                                "drill": "zero-on-trip",
                                "members": 0,
                            },
                            {
                                "build_id": broken_fix,
                                "status": "current",
                                "drill": "double-points",
                                "members": 0,
                            },
                        ]
                    )
                    wizard.build_combo.setCurrentIndex(wizard.build_combo.findData(bad))
                    for _ in range(3):
                        await wizard._on_next_button_clicked()
                    assert wizard.step == EXECUTE
                    wizard.reason_edit.setText("drill rehearsal")
                    await wizard._on_execute_button_clicked()
                    await wait_until(lambda: wizard.step == VERIFY, timeout=ROLLBACK_TIMEOUT_S)
                    assert wizard.verify_table.isVisibleTo(wizard)
                    rows = wizard.verify_model.records
                    assert sorted(r["member_id"] for r in rows) == sorted(members.ids)
                    for row in rows:
                        assert row["result"] == "mismatch"
                        assert "points " in row["details"] and " != " in row["details"], row
                    assert "2 mismatches" in wizard.verify_summary.text()
                    pending = wizard.stop()
                    if pending:
                        await asyncio.wait(pending, timeout=10)
                    await session.stop()

    qloop.run_until_complete(scenario())
