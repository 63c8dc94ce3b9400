"""The Releases panel end to end: versions with their members, a drill worker started
from the panel damages members, the wizard in the panel repairs them, the audit log
shows who did it and why."""

from __future__ import annotations

import os
import re
import signal
import uuid
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop import theme
from desktop.asyncutil import wait_until
from desktop.releases_panel import ReleasesPanel
from desktop.rollback_wizard import AFFECTED, EXECUTE, VERIFY
from runtime import audit
from tests.conftest import Deployment
from tests.desktop.conftest import process_gone
from tests.kit.desk import (
    ROLLBACK_TIMEOUT_S,
    Members,
    connected_session,
    worker,
)
from workflows.drill import drill_build_id

pytestmark = pytest.mark.slow


def versions(panel: ReleasesPanel) -> dict[str, dict[str, Any]]:
    return {r["build_id"]: r for r in panel.versions_model.records}


def test_drill_started_from_the_panel_is_marked_and_the_wizard_repairs_it(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    target = deployment.target
    release = f"7.{uuid.uuid4().hex[:6]}"
    first, fixed = f"{release}.0", f"{release}.2"
    bad = drill_build_id(f"{release}.1", "zero-on-trip")

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        panel = ReleasesPanel(session=session)
        qtbot.addWidget(panel)
        panel.resize(1100, 800)
        panel.show()
        posted: list[str] = []
        panel.status_posted.connect(posted.append)
        members = Members(client, target, 3)
        async with worker(client, target, first):
            await members.start()
            await members.feed("a", 6, day=1)
            await panel.refresh()
            assert versions(panel)[first]["status"] == "current"
            await wait_until(lambda: _members_on(panel, first, 3), timeout=30, interval=1)

            # refused without a reason: nothing starts
            panel.build_edit.setText(f"{release}.1")
            panel.drill_combo.setCurrentIndex(panel.drill_combo.findData("zero-on-trip"))
            await panel._on_start_button_clicked()
            assert panel.message.text() == "starting a worker needs a reason"
            assert panel.workers == {}

            panel.reason_edit.setText("drill rehearsal")
            await panel._on_start_button_clicked()
            assert panel.workers[bad].state == "running"
            assert versions(panel)[bad]["drill"] == "zero-on-trip"
            # newest build first; the new one is selected, and the next worker is a real
            # build unless a drill is picked again
            assert list(versions(panel)) == [bad, first]
            assert panel.selected_build() == bad
            assert panel.drill_combo.currentData() is None and panel.build_edit.text() == ""
            row = list(versions(panel)).index(bad)
            badge = panel.versions_model.index(row, 1)
            assert panel.versions_model.data(badge) == "DRILL: zero-on-trip"
            assert panel.versions_model.data(
                badge, Qt.ItemDataRole.BackgroundRole
            ).color() == theme.color("drill_background")
            assert panel.select_build(bad)
            await panel._on_current_button_clicked()
            assert panel.message.text() == f"build {bad} is now current"
            damaged = await members.feed("b", 8, day=5)
            assert any(damaged[m]["points"] != members.truth(m)["points"] for m in members.ids)

            panel.build_edit.setText(fixed)
            await panel._on_start_button_clicked()
            assert panel.selected_build() == fixed
            assert list(versions(panel)) == [fixed, bad, first]
            await panel._on_current_button_clicked()
            await panel.refresh()
            assert versions(panel)[fixed]["status"] == "current"
            assert versions(panel)[fixed]["drill"] is None
            await wait_until(lambda: _members_on(panel, bad, 3), timeout=30, interval=1)

            wizard = panel.wizard
            assert wizard.build_combo.itemData(0) == bad  # the drill is offered first
            await wizard._on_next_button_clicked()
            assert wizard.step == AFFECTED
            assert wizard.affected_summary.text().startswith(f"Build {bad} touched 3 of ")
            report = wizard.report
            assert report is not None
            assert report.totals.points_after == sum(
                members.truth(m)["points"] for m in members.ids
            )
            await wizard._on_next_button_clicked()
            await wizard._on_next_button_clicked()
            assert wizard.step == EXECUTE
            assert wizard.progress_bar.text() == "0 of 3 members"  # not the bar's 100
            await wizard._on_execute_button_clicked()  # no reason yet: refused
            assert wizard.message.text() == "A rollback needs a reason: it goes into the audit log."
            assert wizard.progress is None
            wizard.reason_edit.setText("points zeroed on trips by the drill")
            await wizard._on_execute_button_clicked()
            await wait_until(lambda: wizard.step == VERIFY, timeout=ROLLBACK_TIMEOUT_S)
            assert wizard.progress is not None and wizard.progress.mismatches == []
            assert wizard.verify_summary.text().startswith(
                f"Rollback of {bad} done: 3 members repaired and verified, 0 mismatches"
            )
            # told in the status bar too, whichever tab is in view
            assert re.fullmatch(
                rf"Rollback of {re.escape(bad)} done: 3 verified, 0 mismatches in \d+ s", posted[-1]
            ), posted[-1]
            await members.assert_repaired(fixed)

            await panel.load_audit()
            audited = [(r["action"], r["subject"]) for r in panel.audit_model.records]
            for entry in (
                ("release.start", bad),
                ("release.set-current", bad),
                ("release.start", fixed),
                ("release.set-current", fixed),
                ("rollback.start", bad),
            ):
                assert entry in audited
            await panel.stop()
            assert all(w.state == "stopped" for w in panel.workers.values())
        await session.stop()

    qloop.run_until_complete(scenario())


def _members_on(panel: ReleasesPanel, build: str, count: int) -> Any:
    async def check() -> bool:
        await panel.refresh()
        return bool(versions(panel).get(build, {}).get("members") == count)

    return check()


def test_the_replay_check_runs_beside_the_window_and_can_be_stopped(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    target = deployment.target
    build = f"8.{uuid.uuid4().hex[:6]}"
    subject = f"replay-{uuid.uuid4().hex[:6]}"

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        panel = ReleasesPanel(session=session)
        qtbot.addWidget(panel)
        panel.show()
        panel.tabs.setCurrentIndex(1)
        members = Members(client, target, 3)
        async with worker(client, target, build):
            await members.start()
            await members.feed("a", 8, day=1)
            await audit.record(client, target, "release.start", reason="a note", subject=subject)

            # a build whose code is not installed here: refused at once, nothing starts
            panel.candidate_edit.setText("9.9")
            await panel._on_replay_button_clicked()
            assert "the code of build '9.9' is not installed here" in panel.message.text()
            assert panel.replay_pid is None and panel.replay_button.isEnabled()
            panel.candidate_edit.clear()

            # while the check replays in its own process, the window does other work
            pid = await start_check(qtbot, panel)
            assert panel.replay_button.isEnabled() is False
            assert panel.replay_cancel_button.isEnabled()
            qtbot.mouseClick(panel.audit_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: _audited(panel, subject), timeout=30)
            assert not process_gone(pid), "the check ended before the window was used"
            assert panel.verdict_label.text().startswith("Replaying")
            # ... and Cancel stops it: its process is gone, nothing is shown as a verdict
            qtbot.mouseClick(panel.replay_cancel_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: process_gone(pid) and panel.replay_pid is None, timeout=10)
            assert panel.verdict_label.text() == "Replay check cancelled."
            assert panel.replay_model.rowCount() == 0
            assert panel.replay_button.isEnabled() and not panel.replay_cancel_button.isEnabled()
            assert panel.findChild(QMessageBox, "errorDialog") is None

            # a check that dies (killed from outside) is a dialog with the reason
            pid = await start_check(qtbot, panel)
            os.kill(pid, signal.SIGKILL)
            await wait_until(lambda: panel.findChild(QMessageBox, "errorDialog"), timeout=10)
            dialog = panel.findChild(QMessageBox, "errorDialog")
            assert isinstance(dialog, QMessageBox)
            assert dialog.text().startswith("The replay check was killed by signal 9")
            assert panel.verdict_label.text() == dialog.text()
            assert panel.replay_button.isEnabled()
            dialog.close()

            # run to the end: the same go / no-go table as before
            await start_check(qtbot, panel)
            await wait_until(lambda: panel.replay_pid is None, timeout=REPLAY_TIMEOUT_S)
            verdict = panel.verdict_label.text()
            assert verdict.startswith("GO for ") and verdict.endswith(" of 3 members"), verdict
            rows = panel.replay_model.records
            assert sorted(r["member_id"] for r in rows) == sorted(members.ids)
            assert all(r["go"] and r["events"] == 8 for r in rows), rows
        await panel.stop()
        await session.stop()

    qloop.run_until_complete(scenario())


REPLAY_TIMEOUT_S = 120


async def start_check(qtbot: Any, panel: ReleasesPanel) -> int:
    """Click "Run replay check"; the pid of the check's process once it runs."""
    qtbot.mouseClick(panel.replay_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: panel.replay_pid is not None, timeout=30)
    assert panel.replay_pid is not None and panel.replay_pid != os.getpid()
    return panel.replay_pid


def _audited(panel: ReleasesPanel, subject: str) -> bool:
    return any(r["subject"] == subject for r in panel.audit_model.records)
