"""The main window's tabs against a real server and worker: Enter on a member opens its
detail, the approvals tab counts what waits, a panel is added with one call, and
closing the window closes the detail windows and stops the refreshes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from desktop.asyncutil import wait_until
from desktop.main_window import MainWindow
from desktop.session import Session
from runtime.connect import Target
from runtime.feed import send_member, wait_applied
from tests.agent.conftest import CHARGE, ticket, trip
from tests.conftest import Deployment
from tests.kit.desk import TIMEOUT_S, UI, desk_session, screenshot, unique

pytestmark = pytest.mark.slow


class NotesPanel(QWidget):
    """A stand-in for a panel built elsewhere."""

    status_posted = Signal(str)


def test_tabs_open_the_detail_count_proposals_and_take_new_panels(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    opened: list[QUrl] = []

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            window = MainWindow(session=session, open_url=opened.append)
            qtbot.addWidget(window)
            window.show()
            tabs = window.tabs
            assert [tabs.tabText(i) for i in range(tabs.count())] == [
                "Members",
                "Approvals",
                "Releases",
                "Settings",
                "Effects",
                "Liability",
            ]
            session.client_connected.emit(client)

            member = unique("wes")
            events = [trip(member, 1, 10_000), ticket(member, 1, CHARGE)]
            await send_member(client, deployment.target, member, events, bulk=False)
            await wait_applied(client, [member])
            panel = window.members
            qtbot.keyClicks(panel.search, member)
            qtbot.keyClick(panel.search, Qt.Key.Key_Return)
            await wait_until(lambda: panel.model.store.member_ids() == [member], timeout=TIMEOUT_S)
            assert panel.select_member(member)
            panel.table.setFocus()
            qtbot.keyClick(panel.table, Qt.Key.Key_Return)
            detail = window.details.get(member)
            assert detail is not None and detail.isVisible()
            await wait_until(
                lambda: detail.state_labels["points"].text() == "100", timeout=TIMEOUT_S
            )
            assert detail.isWindow() and detail.windowTitle() == f"Member {member} · Loyalty Desk"
            # the agent proposes on its own time; the open detail picks it up
            await wait_until(
                lambda: detail.state_labels["pending"].text() == "2", timeout=TIMEOUT_S
            )
            assert [(r["action"], r["status"]) for r in detail.proposals_model.rows] == [
                ("grant_points", "pending"),
                ("message_member", "pending"),
            ]
            detail.close()
            cell = panel.table.visualRect(panel.model.index_of(member)).center()
            # as a mouse sends it: a click, then the double click
            qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
            qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
            assert detail.isVisible()
            assert list(window.details) == [member]  # the same window, opened again

            # the approvals tab loads when shown and says how many proposals wait
            window.show_panel("Approvals")
            await wait_until(lambda: tabs.tabText(1) == "Approvals (2)", timeout=TIMEOUT_S)
            assert {r["member_id"] for r in window.approvals.model.rows} == {member}
            # the Web UI opens at the member of the selected proposal
            window.approvals.select_row(0)
            url = window.web_ui_url()
            assert url is not None
            assert url.toString() == f"{UI}/namespaces/default/workflows/member-{member}"
            screenshot(window, "main-window-approvals")
            # a decision from the queue shows in the open detail window
            window.approvals.reason.setText("refund the double charge")
            await window.approvals.decide_current(True)
            await wait_until(
                lambda: detail.proposals_model.rows[0]["status"] == "approved", timeout=TIMEOUT_S
            )
            await wait_until(
                lambda: detail.state_labels["points"].text() == "200", timeout=TIMEOUT_S
            )
            await wait_until(
                lambda: "decision" in [r["kind"] for r in detail.timeline_model.rows],
                timeout=TIMEOUT_S,
            )
            detail.tabs.setCurrentWidget(detail.proposals_table)
            screenshot(detail, "member-detail-proposals")
            window.show_panel("Members")
            screenshot(window, "main-window-members")

            # a panel built elsewhere is one call away, with its messages in the status bar
            notes = NotesPanel()
            window.add_panel("Notes", notes)
            assert tabs.tabText(6) == "Notes" and window.show_panel("Notes") is notes
            notes.status_posted.emit("saved")
            assert window.statusBar().currentMessage() == "saved"

            window.close()
            assert not detail.isVisible()
            await asyncio.sleep(0.2)  # cancelled refreshes end
            # stopping again finds nothing left running, and no timer starts more
            stopping = window.stop()
            if stopping:
                await asyncio.wait(stopping, timeout=5)
            assert all(t.done() and t.exception() is None for t in stopping)

    qloop.run_until_complete(scenario())


def test_without_a_browser_the_web_ui_address_goes_to_the_clipboard(
    qtbot: Any, tmp_path: Path
) -> None:
    session = Session(
        target=Target(address=None, namespace="default", data_dir=tmp_path), start_worker=False
    )
    session.ui_url = UI
    window = MainWindow(session=session, open_url=lambda _url: False)
    qtbot.addWidget(window)
    window.show()
    assert not window.strip.web_ui_button.isEnabled()  # the server is still starting
    session.server_changed.emit("running", "127.0.0.1:7233")
    qtbot.mouseClick(window.strip.web_ui_button, Qt.MouseButton.LeftButton)
    assert window.statusBar().currentMessage() == (
        "No web browser found: the Web UI's address is on the clipboard"
    )
    assert QGuiApplication.clipboard().text() == f"{UI}/namespaces/default/workflows"


def test_the_status_bar_tells_the_deployments_build_apart_from_the_apps_worker(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            session.start_worker = True  # as in the app, whose worker reports its build
            window = MainWindow(session=session, open_url=lambda _url: True)
            qtbot.addWidget(window)
            window.show()
            session.client_connected.emit(client)
            # build 1.0 polled first and was made current (desk_session)
            await wait_until(
                lambda: window.strip.deployment_label.text() == "Deployment: current 1.0",
                timeout=TIMEOUT_S,
            )
            # the app's own worker runs an older build: both show, and the difference
            # is pointed out rather than hidden
            session.worker_changed.emit("running", "0.9")
            assert window.strip.worker_label.text() == "Worker: running · build 0.9"
            assert window.strip.deployment_label.text() == "Deployment: current 1.0"
            assert window.strip.worker_label.property("tone") == "warn"
            assert "current build is 1.0" in window.strip.worker_label.toolTip()
            session.worker_changed.emit("running", "1.0")
            assert window.strip.worker_label.property("tone") == ""
            # the Releases tab's listing updates it at once (no waiting for the poll)
            window.releases.versions_loaded.emit(
                [
                    {"build_id": "2.0", "status": "ramping", "ramp_percentage": 25.0},
                    {"build_id": "1.0", "status": "current", "ramp_percentage": 0.0},
                ]
            )
            assert window.strip.deployment_label.text() == (
                "Deployment: current 1.0, ramping 2.0 at 25%"
            )
            window.close()
            stopping = window.stop()
            if stopping:
                await asyncio.wait(stopping, timeout=5)

    qloop.run_until_complete(scenario())
