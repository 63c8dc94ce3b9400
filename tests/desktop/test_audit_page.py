"""Issue 13: the window's audit page shows the whole record and filters it by actor,
action, member and time, as an operator looking for one decision would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import qasync

from desktop.audit_page import AuditPage
from runtime import audit
from tests.auditkit import desk
from tests.conftest import Deployment, eventually
from workflows.audit import AUDIT_WORKFLOW_ID, AuditWorkflow


def shown(page: AuditPage) -> list[tuple[str, str, str]]:
    return [(r["actor"], r["action"], r["subject"]) for r in page.model.records]


def test_filters_by_actor_action_member_and_time(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    client = deployment.client

    async def scenario() -> None:
        page = AuditPage()
        qtbot.addWidget(page)
        page.show()
        async with desk(deployment) as target:
            entries = [
                ("alice", "approval.approve", "m-1:t1:0", {}),
                ("bob", "approval.reject", "m-2:t1:0", {}),
                ("alice", "member.adjust", "m-2", {"points": 5}),
                ("carol", "rollback.reset", "0.9", {"members": ["m-1", "m-3"]}),
            ]
            for actor, action, subject, details in entries:
                await audit.record(
                    client,
                    target,
                    action,
                    reason="r",
                    subject=subject,
                    details=details,
                    actor=actor,
                )

            async def all_in() -> bool:
                handle = client.get_workflow_handle(AUDIT_WORKFLOW_ID)
                return len(await handle.query(AuditWorkflow.entries)) == 4

            await eventually(all_in, timeout=20)
            await page.load(client, target.data_dir)
        assert len(shown(page)) == 4
        assert shown(page)[0][1] == "rollback.reset"  # newest first

        page.actor_edit.setText("alice")
        assert [a for _, a, _ in shown(page)] == ["member.adjust", "approval.approve"]
        page.action_edit.setText("approval")
        assert shown(page) == [("alice", "approval.approve", "m-1:t1:0")]
        page.actor_edit.clear()
        page.action_edit.clear()
        # a member: their proposals, adjustments and the rollbacks that reset them
        page.member_edit.setText("m-1")
        assert [a for _, a, _ in shown(page)] == ["rollback.reset", "approval.approve"]
        page.member_edit.setText("m-2")
        assert [a for _, a, _ in shown(page)] == ["member.adjust", "approval.reject"]
        page.member_edit.clear()

        today = datetime.now(UTC).date()
        page.since_edit.setText((today + timedelta(days=1)).isoformat())
        assert shown(page) == []
        page.since_edit.setText(today.isoformat())
        page.until_edit.setText(today.isoformat())
        assert len(shown(page)) == 4
        page.until_edit.setText("yesterday-ish")
        assert shown(page) == []
        assert (
            page.status.text() == "'yesterday-ish' is not a day (YYYY-MM-DD) or a time (ISO 8601)"
        )
        page.until_edit.clear()
        assert len(shown(page)) == 4 and page.status.text().startswith("4 of 4 shown")

    qloop.run_until_complete(scenario())
