"""The whole first window against the real thing: embedded server, worker process, feed."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt, QUrl
from PySide6.QtTest import QSignalSpy
from PySide6.QtWidgets import QMessageBox

from desktop.asyncutil import wait_until
from desktop.desk import Desk
from desktop.members_model import MembersTableModel
from desktop.status_strip import PRIVATE_SOCKET, shown_address
from runtime import feed
from runtime.connect import Target
from runtime.server import private_network_available
from runtime.simulate import simulate
from tests.desktop.conftest import process_gone

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 90


def ann_events(start: datetime, first: int, count: int) -> list[dict[str, Any]]:
    """Purchases of $123.45 each: 123 points apiece while ann is Blue."""
    return [
        {
            "type": "purchase",
            "event_id": f"ann-{n}",
            "member_id": "ann",
            "occurred_at": (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
            "amount_cents": 12_345,
        }
        for n in range(first, first + count)
    ]


async def send(desk: Desk, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    client = desk.session.client
    assert client is not None
    batch = feed.check(enumerate(events, start=1))
    assert batch.report.rejected == 0
    await feed.deliver(client, desk.session.target, batch)
    return await feed.wait_applied(client, batch.by_member)


def shown_points(desk: Desk, member_id: str) -> int | None:
    model = desk.window.members.model
    index = model.index_of(member_id)
    if not index.isValid():
        return None
    return int(model.data(index, MembersTableModel.RowRole)["points"] or 0)


def test_window_shows_fed_members_and_closing_stops_worker_and_server(
    qloop: qasync.QEventLoop, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_DESK_WEB_UI", "1")  # the Web UI is off unless asked for
    target = Target(address=None, namespace="default", data_dir=tmp_path / "data")
    opened: list[QUrl] = []
    desk = Desk(target=target, open_url=opened.append)
    qtbot.addWidget(desk.window)
    window = desk.window
    panel = window.members
    start = datetime.now(UTC) - timedelta(days=60)  # simulate() moves ahead ~3 days a step
    pids: dict[str, int] = {}

    async def scenario() -> None:
        desk.start()
        assert window.isVisible()  # shown before the server is up
        assert window.strip.server_label.text() == "Server: starting…"
        # its own network: reached by a socket file in the data dir (runtime/private_net.py)
        # shown as such, not as the socket's long path (the tooltip has the address)
        where = PRIVATE_SOCKET if private_network_available() else "127.0.0.1:"
        starting = f"Server: starting on {where}"
        await wait_until(lambda: window.strip.server_label.text().startswith(starting), timeout=10)
        await wait_until(lambda: desk.session.worker_state == "running", timeout=STARTUP_TIMEOUT_S)
        assert desk.session.server is not None and desk.session.worker is not None
        pids["server"] = desk.session.server.pid or 0
        pids["worker"] = desk.session.worker.pid or 0
        address = desk.session.address or ""
        assert window.strip.server_label.text() == f"Server: running on {shown_address(address)}"
        assert address.startswith("unix:///") == private_network_available()
        assert f"The server's address: {address}" in window.strip.server_label.toolTip()
        assert (
            window.strip.worker_label.text()
            == "Worker: running · build " + desk.session.worker_build
        )

        others = list(simulate(120, 24, seed=7, start=start))
        states = await send(desk, ann_events(start, 0, 3) + others)
        assert states["ann"]["points"] == 3 * 123
        # the table catches up on its own (periodic refresh), no click needed
        await wait_until(lambda: shown_points(desk, "ann") == 369, timeout=10)
        await wait_until(
            lambda: all(shown_points(desk, m) == s["points"] for m, s in states.items()),
            timeout=10,
        )
        assert panel.model.rowCount() == 25

        # a selected row stays selected and in place while its points change
        assert panel.select_member("ann")
        row_before = panel.model.index_of("ann").row()
        resets = QSignalSpy(panel.model.modelReset)
        changes = QSignalSpy(panel.model.dataChanged)
        await send(desk, ann_events(start, 3, 1))
        await wait_until(lambda: shown_points(desk, "ann") == 4 * 123, timeout=10)
        assert panel.selected_member_id() == "ann"
        assert panel.model.index_of("ann").row() == row_before
        assert resets.count() == 0 and changes.count() >= 1

        # search by member id prefix, a bad query, then back to everyone
        qtbot.keyClicks(panel.search, "ann")
        qtbot.keyClick(panel.search, Qt.Key.Key_Return)
        await wait_until(lambda: panel.model.store.member_ids() == ["ann"], timeout=10)
        panel.search.setText("LoyaltyPoints >")
        qtbot.keyClick(panel.search, Qt.Key.Key_Return)
        await wait_until(lambda: panel.error_label.isVisible(), timeout=10)
        assert panel.error_label.text() == "Invalid query: malformed SQL query: syntax error"
        panel.search.clear()
        await wait_until(lambda: not panel.error_label.isVisible(), timeout=10)
        await wait_until(lambda: panel.model.rowCount() == 25, timeout=10)
        assert panel.select_member("ann")

        window.strip.web_ui_button.click()
        assert [u.toString() for u in opened] == [
            f"{desk.session.ui_url}/namespaces/default/workflows/member-ann"
        ]
        _save_screenshot(desk)

        window.close()
        await desk.request_shutdown()

    async def shut_down() -> None:
        await desk.request_shutdown()

    try:
        qloop.run_until_complete(scenario())
    finally:
        qloop.run_until_complete(shut_down())
    assert desk.session.worker_state == "stopped" and desk.session.server_state == "stopped"
    assert pids["server"] and process_gone(pids["server"])
    assert pids["worker"] and process_gone(pids["worker"])
    assert not (target.data_dir / "server.json").exists()


def _save_screenshot(desk: Desk) -> None:
    """For people to look at: LOYALTY_DESK_SCREENSHOTS=DIR keeps first-window.png."""
    where = os.environ.get("LOYALTY_DESK_SCREENSHOTS")
    if not where:
        return
    Path(where).mkdir(parents=True, exist_ok=True)
    assert desk.window.grab().save(str(Path(where) / "first-window.png"))


def test_server_failure_is_shown_and_the_window_stays(
    qloop: qasync.QEventLoop, qtbot: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "temporal.sqlite").write_text("not a database")
    desk = Desk(target=Target(address=None, namespace="default", data_dir=data_dir))
    qtbot.addWidget(desk.window)

    async def scenario() -> None:
        task = desk.start()
        await asyncio.wait([task], timeout=STARTUP_TIMEOUT_S)
        assert task.done()
        assert desk.window.isVisible()
        assert desk.window.strip.server_label.text() == "Server: failed"
        assert desk.window.strip.server_label.toolTip()
        dialog = desk.window.findChild(QMessageBox, "errorDialog")
        assert dialog is not None and dialog.isVisible()
        assert dialog.text() == "temporal server exited with code 1 while starting"
        assert "file is not a database" in dialog.informativeText()
        message = desk.window.statusBar().currentMessage()
        assert message.startswith("Could not start the Temporal server: temporal server exited")
        assert desk.session.worker is None
        assert desk.window.strip.worker_label.text() == "Worker: stopped"
        await desk.request_shutdown()

    qloop.run_until_complete(scenario())
