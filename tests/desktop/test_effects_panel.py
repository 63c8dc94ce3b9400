"""Issue 13 in the window (real widgets offscreen, a real server and worker, a real
webhook on loopback): Settings points messages at the webhook and stores its signing
secret in the keyring; an approved message shows as delivered in the Effects tab and in
the member's detail; a message the receiver refuses shows as failed with the receiver's
answer, and Retry delivers it once the receiver takes it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from temporalio.client import WorkflowUpdateFailedError

from desktop.asyncutil import wait_until
from desktop.main_window import MainWindow
from runtime import secrets
from runtime.feed import send_member, wait_applied
from tests.agent.conftest import CHARGE, files_containing, ticket
from tests.conftest import Deployment, eventually
from tests.desktop.test_member_detail import TIMEOUT_S, desk_session, screenshot, unique
from tests.effects.kit import webhook
from workflows.member import Decision, MemberWorkflow, member_workflow_id

pytestmark = pytest.mark.slow


def cells(panel: Any, row: int) -> list[str]:
    return [panel.table.item(row, c).text() for c in range(panel.table.columnCount())]


def test_settings_route_messages_and_the_effects_view_shows_and_retries_them(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment, real_keyring: str
) -> None:
    hook_secret = f"whsec-{uuid.uuid4().hex}"

    async def approve_message(client: Any, member: str) -> None:
        await send_member(
            client, deployment.target, member, [ticket(member, 1, CHARGE)], bulk=False
        )
        await wait_applied(client, [member])
        handle = client.get_workflow_handle(member_workflow_id(member))

        async def message_id() -> dict[str, Any] | None:
            state = await handle.query(MemberWorkflow.state)
            found = [p for p in state["proposals"] if p["action"] == "message_member"]
            done = state["agent"]["running"] is None  # its run has ended: decidable
            return found[0] if found and done else None

        shown = await eventually(message_id, timeout=TIMEOUT_S)
        try:
            await handle.execute_update(
                MemberWorkflow.decide,
                Decision(shown["id"], True, "send it", "tester", digest=shown["digest"]),
            )
        except WorkflowUpdateFailedError as error:
            raise AssertionError(str(error.cause)) from None

    async def scenario() -> None:
        async with desk_session(deployment) as session, webhook(hook_secret) as hook:
            client = session.client
            window = MainWindow(session=session)
            qtbot.addWidget(window)
            window.show()
            # Settings: the webhook for messages, its secret, why
            window.show_panel("Settings")
            box = window.settings.effects_box
            await wait_until(lambda: box.loaded is not None, timeout=TIMEOUT_S)
            qtbot.keyClicks(box.webhooks["message"], hook.url)
            qtbot.keyClicks(box.webhook_secret, hook_secret)
            qtbot.keyClicks(box.reason, "the local receiver")
            qtbot.mouseClick(box.apply_button, Qt.MouseButton.LeftButton)
            await wait_until(lambda: "version 1" in box.status.text(), timeout=TIMEOUT_S)
            assert secrets.get_secret("webhook") == hook_secret and box.webhook_secret.text() == ""
            assert files_containing(deployment.target.data_dir, hook_secret) == []

            # an approved message: delivered, in the Effects tab and the member's detail
            member = unique("fx")
            await approve_message(client, member)
            await wait_until(lambda: len(hook.applied) == 1, timeout=TIMEOUT_S)
            panel = window.show_panel("Effects")
            qtbot.keyClicks(panel.member_filter, member)
            qtbot.keyClick(panel.member_filter, Qt.Key.Key_Return)
            await wait_until(
                lambda: panel.rows and panel.rows[0]["status"] == "delivered", timeout=TIMEOUT_S
            )
            assert cells(panel, 0)[:4] == ["delivered", "message", member, "1"]
            assert "HTTP 200" in cells(panel, 0)[5]
            detail = window.open_member(member)
            detail.tabs.setCurrentWidget(detail.effects)
            await wait_until(lambda: len(detail.effects.rows) == 1, timeout=TIMEOUT_S)
            assert detail.effects.rows[0]["status"] == "delivered"

            # a refusal: failed with the receiver's answer; Retry once it is fixed
            hook.script, hook.script_text = [400], "no such member in the CRM"
            other = unique("fx")
            await approve_message(client, other)
            panel.member_filter.clear()
            qtbot.keyClicks(panel.member_filter, other)
            qtbot.keyClick(panel.member_filter, Qt.Key.Key_Return)
            await wait_until(
                lambda: panel.rows and panel.rows[0]["status"] == "failed", timeout=TIMEOUT_S
            )
            assert cells(panel, 0)[5] == "HTTP 400: no such member in the CRM"
            assert "1 failed" in panel.count_label.text()
            panel.table.selectRow(0)
            assert panel.retry_button.isEnabled()
            qtbot.mouseClick(panel.retry_button, Qt.MouseButton.LeftButton)
            await wait_until(
                lambda: panel.rows and panel.rows[0]["status"] == "delivered", timeout=TIMEOUT_S
            )
            assert len(hook.applied) == 2 and not panel.retry_button.isEnabled()
            panel.member_filter.clear()
            qtbot.keyClick(panel.member_filter, Qt.Key.Key_Return)
            await wait_until(lambda: len(panel.rows) == 2, timeout=TIMEOUT_S)
            screenshot(window, "effects-tab")
            screenshot(box, "effects-settings")
            for task in window.stop():
                await task

    qloop.run_until_complete(scenario())
