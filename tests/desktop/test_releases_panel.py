"""The Releases panel end to end: versions with their members, a drill worker started
from the panel damages members, the wizard in the panel repairs them, the audit log
shows who did it and why."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt

from desktop.asyncutil import wait_until
from desktop.release_models import DRILL_BACKGROUND
from desktop.releases_panel import ReleasesPanel
from desktop.rollback_wizard import AFFECTED, EXECUTE, VERIFY
from tests.conftest import Deployment
from tests.desktop.test_rollback_wizard import (
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
            assert (
                panel.versions_model.data(badge, Qt.ItemDataRole.BackgroundRole).color()
                == DRILL_BACKGROUND
            )
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
            assert report["totals"]["points_after"] == sum(
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
