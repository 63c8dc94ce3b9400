"""Simulated traffic from the window against a real server and worker: the Members tab's
"Simulate traffic…" sends the generated feed, the members show up with the points the
rules give, a run can be cancelled, and a failure is a dialog with its reason."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from temporalio.client import Client

from desktop.asyncutil import wait_until
from desktop.main_window import MainWindow
from desktop.members_store import COLUMNS
from desktop.simulate_dialog import SimulateDialog, TrafficPlan
from runtime.simulate import simulate
from tests.conftest import Deployment
from tests.kit.desk import TIMEOUT_S, desk_session, screenshot, unique
from workflows.rules import replay

pytestmark = pytest.mark.slow


def fill(qtbot: Any, dialog: SimulateDialog, plan: TrafficPlan) -> None:
    """Type the plan into the dialog as a user would."""
    for spin, value in (
        (dialog.events_spin, plan.events),
        (dialog.members_spin, plan.members),
        (dialog.seed_spin, plan.seed),
    ):
        spin.selectAll()
        qtbot.keyClicks(spin, str(value))
    dialog.prefix_edit.selectAll()
    qtbot.keyClicks(dialog.prefix_edit, plan.prefix)
    radio = dialog.bulk_radio if plan.bulk else dialog.live_radio
    qtbot.mouseClick(radio, Qt.MouseButton.LeftButton)
    assert dialog.plan() == plan


def expected_points(*plans: TrafficPlan) -> dict[str, int]:
    """Each member's points by the rules, after the plans' events in the order sent."""
    by_member: dict[str, list[Any]] = {}
    for plan in plans:
        for event in simulate(plan.events, plan.members, plan.seed, prefix=plan.prefix):
            by_member.setdefault(event["member_id"], []).append(event)
    return {m: replay(m, events).summary()["points"] for m, events in by_member.items()}


def shown_points(window: MainWindow) -> dict[str, int]:
    model = window.members.model
    points = [c.key for c in COLUMNS].index("points")
    shown: dict[str, int] = {}
    for row in range(model.rowCount()):
        member = model.member_id_at(row)
        text = model.index(row, points).data()
        if member and text:
            shown[member] = int(str(text).replace(",", ""))
    return shown


def test_simulated_traffic_from_the_members_tab_shows_up_as_members(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            window = MainWindow(session=session)
            qtbot.addWidget(window)
            window.resize(1100, 680)
            window.show()
            panel = window.members
            assert not panel.simulate_button.isEnabled()  # nothing to send to yet
            session.client_connected.emit(client)
            assert panel.simulate_button.isEnabled()
            qtbot.mouseClick(panel.simulate_button, Qt.MouseButton.LeftButton)
            dialog = window.simulate_dialog
            assert dialog is not None and dialog.isVisible()

            # a prefix no member id can start with is refused in one line; nothing is sent
            dialog.prefix_edit.setText("no spaces")
            qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            assert "cannot start a member id" in dialog.message.text()
            assert dialog.isVisible() and dialog.send_button.isEnabled()

            plan = TrafficPlan(events=120, members=4, seed=7, prefix=unique("sim"), bulk=False)
            fill(qtbot, dialog, plan)
            assert dialog.command_label.text() == f"From a shell: {plan.command()}"
            screenshot(dialog, "simulate-dialog")
            qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            assert dialog.running and not dialog.events_spin.isEnabled()
            assert dialog.cancel_button.text() == "Cancel"
            await wait_until(lambda: not dialog.isVisible(), timeout=TIMEOUT_S)
            message = window.statusBar().currentMessage()
            assert re.fullmatch(
                r"Simulated traffic: 120 events sent to 4 members in \d+\.\d s, 0 rejected",
                message,
            ), message
            assert dialog.seed_spin.value() == plan.seed + 1  # the next run sends new events

            # the members appear in the table with the points the rules give them
            expected = expected_points(plan)
            qtbot.keyClicks(panel.search, plan.prefix)
            qtbot.keyClick(panel.search, Qt.Key.Key_Return)
            await wait_until(lambda: shown_points(window) == expected, timeout=TIMEOUT_S)
            assert panel.count_label.text() == (
                f"4 members matching WorkflowId STARTS_WITH 'member-{plan.prefix}'"
            )

            # bulk, with the next seed: the same members get more points
            window.open_simulate()
            more = dataclasses.replace(plan, seed=plan.seed + 1, bulk=True)
            fill(qtbot, dialog, more)
            qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: not dialog.isVisible(), timeout=TIMEOUT_S)
            assert "120 events sent to 4 members" in window.statusBar().currentMessage()
            both = expected_points(plan, more)
            assert set(both) == set(expected) and both != expected
            await wait_until(lambda: shown_points(window) == both, timeout=TIMEOUT_S)
            window.close()
            await asyncio.sleep(0.2)  # the panels' stops end

    qloop.run_until_complete(scenario())


def test_a_run_can_be_cancelled_and_a_failure_says_why(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            window = MainWindow(session=session)
            qtbot.addWidget(window)
            window.show()
            session.client_connected.emit(client)
            dialog = window.open_simulate()

            plan = TrafficPlan(events=20_000, members=200, seed=1, prefix=unique("big"))
            fill(qtbot, dialog, plan)
            qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: dialog.progress_bar.value() > 0, timeout=TIMEOUT_S)
            qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: not dialog.running, timeout=TIMEOUT_S)
            # the dialog stays, says how far it got, and can send again
            assert dialog.isVisible() and dialog.send_button.isEnabled()
            assert dialog.cancel_button.text() == "Close"
            found = re.match(
                r"Simulated traffic cancelled: ([\d,]+) of 20,000 events sent",
                dialog.message.text(),
            )
            assert found, dialog.message.text()
            assert 0 < int(found.group(1).replace(",", "")) < 20_000
            assert window.statusBar().currentMessage() == dialog.message.text()
            assert dialog.seed_spin.value() == plan.seed  # not done: the same seed finishes it

            # a namespace the server does not know: the error dialog gives its reason
            session.client = await Client.connect(
                deployment.address, namespace=f"no-such-{unique('ns')}"
            )
            qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
            await wait_until(
                lambda: dialog.findChild(QMessageBox, "errorDialog") is not None,
                timeout=TIMEOUT_S,
            )
            box = dialog.findChild(QMessageBox, "errorDialog")
            assert isinstance(box, QMessageBox) and box.isVisible()
            assert box.windowTitle() == "Simulated traffic failed"
            assert re.search(r"[Nn]amespace .*not found", box.text()), box.text()
            assert "\n" not in box.text()
            assert dialog.message.text().startswith("Simulated traffic failed: ")
            assert dialog.send_button.isEnabled() and dialog.isVisible()  # nothing lost
            assert dialog.plan() == plan
            box.close()
            window.close()
            await asyncio.sleep(0.2)  # the panels' stops end

    qloop.run_until_complete(scenario())
