"""Settings that take effect: saving budgets offers to restart the app's worker and does
it with events flowing, none lost (the new worker polls before the old one stops); a
new Temporal target offers a relaunch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QMessageBox

from desktop.asyncutil import wait_until
from desktop.desk import Desk
from desktop.main_window import MainWindow
from desktop.session import Session
from runtime import feed
from runtime.connect import Target
from tests.conftest import Deployment
from tests.desktop.conftest import process_gone
from tests.kit.desk import unique

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 90
PURCHASE_CENTS = 12_345  # 123 points apiece for a Blue member


def purchases(members: list[str], start: datetime, n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "purchase",
            "event_id": f"{member}-{n}",
            "member_id": member,
            "occurred_at": (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
            "amount_cents": PURCHASE_CENTS,
        }
        for member in members
    ]


def test_saving_budgets_restarts_the_worker_with_events_flowing_and_none_lost(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    desk = Desk(target=deployment.target, start_worker=True, open_url=lambda _url: True)
    qtbot.addWidget(desk.window)
    session = desk.session
    members = [unique("rita"), unique("sam"), unique("tom")]
    start = datetime.now(UTC) - timedelta(days=1)

    async def scenario() -> None:
        await asyncio.wait_for(desk.start(), STARTUP_TIMEOUT_S)
        assert session.worker is not None and session.worker.state == "running"
        client = session.client
        assert client is not None
        old = session.worker
        old_pid = old.pid
        assert old_pid is not None
        states: list[str] = []
        session.worker_changed.connect(lambda state, _build: states.append(state))

        sent = 0
        flowing = True

        async def keep_sending() -> None:
            nonlocal sent
            while flowing:
                batch = feed.check(enumerate(purchases(members, start, sent), start=1))
                await feed.deliver(client, session.target, batch)
                sent += 1
                await asyncio.sleep(0.05)

        sender = asyncio.ensure_future(keep_sending())
        await wait_until(lambda: sent >= 5, timeout=30)

        # the model changed in Settings and saved: the app asks, and the answer is yes
        panel = desk.window.settings
        desk.window.show_panel("Settings")
        panel.model_edit.setText("rules-v2")
        assert await panel.save()
        await wait_until(lambda: panel.question is not None, timeout=5)
        box = panel.question
        assert box is not None and box.objectName() == "restartWorkerQuestion"
        assert "no event waits and none is lost" in box.informativeText()
        sent_before = sent
        box.button(QMessageBox.StandardButton.Yes).click()
        await wait_until(lambda: session.worker is not old, timeout=STARTUP_TIMEOUT_S)
        new_pid = session.worker.pid
        assert new_pid is not None and new_pid != old_pid
        await wait_until(lambda: process_gone(old_pid), timeout=30)
        await wait_until(
            lambda: panel.message.text().startswith("Worker restarted with the new settings"),
            timeout=30,
        )
        # the handover showed no gap: the worker was never "stopped" or "starting"
        assert set(states) == {"running"}, states
        assert desk.window.strip.worker_label.text().startswith("Worker: running · build ")

        await wait_until(lambda: sent >= sent_before + 10, timeout=30)  # still flowing
        flowing = False
        await sender
        states_after = await feed.wait_applied(client, members)
        for member in members:
            assert states_after[member]["events_processed"] == sent, member
            assert states_after[member]["events_rejected"] == 0, member
            assert states_after[member]["points"] >= 123 * sent, member  # tiers earn more
        # the new worker runs the saved model (its settings.json)
        assert "rules-v2" in (session.target.data_dir / "settings.json").read_text()
        await desk.request_shutdown()
        assert process_gone(new_pid)

    qloop.run_until_complete(scenario())


def test_a_new_temporal_target_offers_a_relaunch(
    qloop: qasync.QEventLoop, qtbot: Any, tmp_path: Path
) -> None:
    session = Session(
        target=Target(address=None, namespace="default", data_dir=tmp_path), start_worker=False
    )
    window = MainWindow(session=session, open_url=lambda _url: True)
    qtbot.addWidget(window)
    window.show()
    panel = window.settings

    async def scenario() -> None:
        # the model alone with no worker of the app's own: nothing to restart, said so
        panel.model_edit.setText("rules-v3")
        assert await panel.save()
        await asyncio.sleep(0.1)
        assert panel.question is None
        assert panel.message.text().endswith("The worker uses them when it next starts.")

        panel.external_radio.setChecked(True)
        panel.address_edit.setText("temporal.example:7233")
        assert await panel.save()
        await wait_until(lambda: panel.question is not None, timeout=5)
        box = panel.question
        assert box is not None and box.objectName() == "relaunchQuestion"
        box.button(QMessageBox.StandardButton.No).click()
        await wait_until(lambda: panel.question is None, timeout=5)
        assert panel.message.text().endswith("It applies at the next launch.")
        assert window.isVisible() and not window.relaunch_requested

        panel.address_edit.setText("temporal.example:7234")
        assert await panel.save()
        await wait_until(lambda: panel.question is not None, timeout=5)
        panel.question.button(QMessageBox.StandardButton.Yes).click()
        await wait_until(lambda: window.relaunch_requested, timeout=5)
        assert not window.isVisible()  # closed; desktop/app.py starts the app again

    qloop.run_until_complete(scenario())


def test_a_new_worker_that_fails_to_start_is_explained_and_the_old_one_keeps_serving(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """The new worker exits at once (its settings file was broken behind the panel's
    back): the person is told why, from its log, and the old worker goes on applying
    events."""
    desk = Desk(target=deployment.target, start_worker=True, open_url=lambda _url: True)
    qtbot.addWidget(desk.window)
    session = desk.session
    member = unique("uli")
    start = datetime.now(UTC) - timedelta(days=1)
    posted: list[str] = []

    async def scenario() -> None:
        await asyncio.wait_for(desk.start(), STARTUP_TIMEOUT_S)
        assert session.worker is not None and session.worker.state == "running"
        old, old_pid, build = session.worker, session.worker.pid, session.worker_build
        client = session.client
        assert client is not None and old_pid is not None
        panel = desk.window.settings
        panel.status_posted.connect(posted.append)
        desk.window.show_panel("Settings")
        panel.model_edit.setText("rules-v4")
        assert await panel.save()
        await wait_until(lambda: panel.question is not None, timeout=5)
        # edited by hand meanwhile: the next worker refuses to start with it
        settings = session.target.data_dir / "settings.json"
        settings.write_text(settings.read_text().replace('"offline"', '"martian"'))
        assert '"martian"' in settings.read_text()
        assert panel.question is not None
        panel.question.button(QMessageBox.StandardButton.Yes).click()
        await wait_until(lambda: panel.handover_error is not None, timeout=STARTUP_TIMEOUT_S)
        box = panel.handover_error
        assert box is not None and box.isVisible()
        assert box.text().startswith("the worker exited with code ")
        assert box.text().endswith(f"the old worker (build {build}) keeps serving.")
        assert "unknown model provider 'martian'" in box.informativeText()  # its log's end
        assert "unknown model provider 'martian'" in box.detailedText()
        assert panel.message.text().startswith("The new worker did not start (the worker exited")
        assert "unknown model provider 'martian'" in panel.message.text()
        assert posted[-1] == panel.message.text()
        # the old one still serves: same process, and a new event is applied
        assert session.worker is old and old.state == "running" and old.pid == old_pid
        assert desk.window.strip.worker_label.text().startswith("Worker: running · build ")
        batch = feed.check(enumerate(purchases([member], start, 0), start=1))
        await feed.deliver(client, session.target, batch)
        applied = await feed.wait_applied(client, [member])
        assert applied[member]["events_processed"] == 1
        box.close()
        await desk.request_shutdown()
        assert process_gone(old_pid)

    qloop.run_until_complete(scenario())
