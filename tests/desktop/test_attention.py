"""The app tells the operator when it needs them: the pending count stays current
whichever tab is shown, proposals past the threshold notify once, notifications are
rate-limited per kind and can be switched off."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon

from desktop import preferences
from desktop.asyncutil import wait_until
from desktop.attention import NO_NOTIFICATIONS, NOTICE_SHOWN_MS, DBusNotifications
from desktop.main_window import MainWindow
from desktop.session import Session
from runtime.connect import Target
from runtime.feed import send_member, wait_applied
from tests.agent.conftest import CHARGE, ticket, trip
from tests.conftest import Deployment
from tests.kit.desk import TIMEOUT_S, desk_session, unique
from workflows.rollback import RollbackProgress


def rollback_progress(verified: int, mismatches: list[dict[str, Any]]) -> RollbackProgress:
    return RollbackProgress(
        bad_build="2.0",
        state="done",
        total=verified + len(mismatches),
        counts={"verified": verified, "mismatch": len(mismatches)},
        verified_ok=verified,
        mismatches=mismatches,
        not_repairable=[],
        scanned=verified + len(mismatches),
        seconds={"running": 3.0},
    )


@pytest.mark.slow
def test_the_count_follows_in_the_background_and_overdue_proposals_notify(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    preferences.write(preferences.Prefs(pending_threshold_min=30, rate_limit_min=10))

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            window = MainWindow(session=session, open_url=lambda _url: True)
            qtbot.addWidget(window)
            window.show()
            session.client_connected.emit(client)
            assert window.tabs.currentWidget() is window.members
            await asyncio.sleep(0.5)
            assert window.windowTitle() == "Loyalty Desk"

            member = unique("tess")
            events = [trip(member, 1, 10_000), ticket(member, 1, CHARGE)]
            await send_member(client, deployment.target, member, events, bulk=False)
            await wait_applied(client, [member])
            # the agent proposes; the Approvals tab is never shown, yet the count comes
            await wait_until(
                lambda: window.windowTitle() == "Loyalty Desk · 2 proposals waiting",
                timeout=TIMEOUT_S,
            )
            assert window.tabs.tabText(1) == "Approvals (2)"
            assert window.tabs.currentWidget() is window.members
            assert not window.approvals.isVisible()
            assert window.notifier.history == []  # they have not waited 30 min

            # 31 minutes later (the clock the app reads ages from)
            later = datetime.now(UTC) + timedelta(minutes=31)
            window.attention.now = lambda: later
            await wait_until(lambda: bool(window.notifier.history), timeout=TIMEOUT_S)
            told = window.notifier.history[0]
            assert told.kind == "pending"
            assert told.text.startswith("2 proposals waited longer than 30 min; the oldest 31 min")
            # offscreen Qt has no tray: the notice shows in the window
            assert window.tray is None
            assert window.notifier.banner.isVisible()
            assert window.notifier.banner.text.text() == told.text
            # the same proposals do not notify again
            await asyncio.sleep(4 * window.approvals._timer.interval() / 1000)
            assert len(window.notifier.history) == 1

            # one decided: the count falls everywhere
            window.show_panel("Approvals")
            await wait_until(lambda: window.approvals.proxy.rowCount() == 2, timeout=TIMEOUT_S)
            window.approvals.select_row(0)
            window.approvals.reason.setText("checked")
            window.approvals.table.setFocus()
            qtbot.keyClick(window.approvals.table, Qt.Key.Key_R)
            await wait_until(
                lambda: window.windowTitle() == "Loyalty Desk · 1 proposal waiting",
                timeout=TIMEOUT_S,
            )
            assert window.tabs.tabText(1) == "Approvals (1)"
            window.close()
            stopping = window.stop()
            if stopping:
                await asyncio.wait(stopping, timeout=5)

    qloop.run_until_complete(scenario())


def offline_window(qtbot: Any, tmp_path: Path) -> MainWindow:
    session = Session(
        target=Target(address=None, namespace="default", data_dir=tmp_path), start_worker=False
    )
    window = MainWindow(session=session, open_url=lambda _url: True)
    qtbot.addWidget(window)
    window.show()
    return window


def test_notifications_are_rate_limited_per_kind_and_can_be_switched_off(
    qtbot: Any, tmp_path: Path
) -> None:
    window = offline_window(qtbot, tmp_path)
    now = [1000.0]
    window.notifier.clock = lambda: now[0]
    box = window.settings.preferences
    assert box.notify_check.isChecked() and box.rate_spin.value() == 10

    # the worker crashes twice in a row: one notification, the second held back
    window.session.worker_changed.emit("restarting", "1.0")
    window.session.worker_changed.emit("running", "1.0")
    window.session.worker_changed.emit("restarting", "1.0")
    assert [n.kind for n in window.notifier.history] == ["worker"]
    assert window.notifier.history[0].title == "The worker stopped"
    # another kind is not held back by it
    window.session.server_changed.emit("failed", "127.0.0.1:7233")
    assert [n.kind for n in window.notifier.history] == ["worker", "server"]
    assert "127.0.0.1:7233 stopped unexpectedly" in window.notifier.history[1].text
    # after the rate limit, the worker may notify again
    now[0] += 10 * 60
    window.session.worker_changed.emit("failed", "1.0")
    assert [n.kind for n in window.notifier.history] == ["worker", "server", "worker"]

    # a rollback that ends with mismatches says so in its title
    progress = rollback_progress(41, [{"member_id": "m", "problems": ["points 5 != 10"]}])
    window.releases.wizard.finished.emit(progress)
    assert window.notifier.history[-1].title == "Rollback finished with 1 mismatches"

    # switched off in Settings: nothing shows, and the choice is remembered
    box.notify_check.setChecked(False)
    now[0] += 60 * 60
    window.session.server_changed.emit("failed", "127.0.0.1:7233")
    verified = rollback_progress(42, [])
    window.releases.wizard.finished.emit(verified)
    assert len(window.notifier.history) == 4
    assert preferences.read().notifications is False
    assert not box.threshold_spin.isEnabled()
    box.notify_check.setChecked(True)
    window.releases.wizard.finished.emit(verified)
    assert window.notifier.history[-1].title == "Rollback finished: verified"
    # normal states notify nothing
    for state in ("starting", "running", "stopped"):
        window.session.worker_changed.emit(state, "1.0")
    assert len(window.notifier.history) == 5


def test_each_test_starts_from_default_preferences() -> None:
    # the previous test switched notifications off and on, and changed nothing else
    # here: QSettings are per test (tests/desktop/conftest.py)
    assert preferences.read() == preferences.Prefs()


def test_without_a_tray_notifications_go_to_the_desktop_service_on_the_session_bus(
    qtbot: Any, tmp_path: Path
) -> None:
    """No tray (offscreen has none): a real service owning org.freedesktop.Notifications
    on the session bus gets each notification, typed as the specification says (a
    strict service refuses anything else); with no service either, the status bar
    says so once."""
    assert not QSystemTrayIcon.isSystemTrayAvailable()
    service = subprocess.Popen(
        [sys.executable, "-m", "tests.desktop.notification_service"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert service.stdout is not None
    try:
        assert json.loads(service.stdout.readline()) == {"ready": True}
        window = offline_window(qtbot, tmp_path)
        notifier = window.notifier
        assert notifier.tray is None and notifier.dbus is not None
        assert window.statusBar().currentMessage() != NO_NOTIFICATIONS
        assert notifier.notify("rollback", "Rollback verified", "12 members repaired")
        call = json.loads(service.stdout.readline())
        assert (call["member"], call["signature"]) == ("Notify", "susssasa{sv}i")
        app, replaces, _icon, title, text, actions, hints, timeout = call["body"]
        assert (app, replaces, title, text) == (
            "Loyalty Desk",
            0,
            "Rollback verified",
            "12 members repaired",
        )
        assert (actions, hints, timeout) == ([], {}, NOTICE_SHOWN_MS)
        assert not notifier.banner.isVisible()  # the desktop shows it, not the window
        window.close()
        assert notifier.dbus is None  # its connection closed with the window
    finally:
        service.kill()
        service.wait()

    # nobody owns the name any more: notices in the window, said once at start
    deadline = time.monotonic() + 10
    while (found := DBusNotifications.find()) is not None:
        found.close()
        assert time.monotonic() < deadline, "the bus still lists the stopped service"
        time.sleep(0.1)
    alone = offline_window(qtbot, tmp_path / "alone")
    assert alone.notifier.dbus is None
    assert alone.statusBar().currentMessage() == NO_NOTIFICATIONS
    assert alone.notifier.notify("worker", "The worker stopped", "exit code 1")
    assert alone.notifier.banner.isVisible()
    assert alone.notifier.banner.text.text() == "exit code 1"
