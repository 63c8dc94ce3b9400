"""The Releases panel reads the audit record only when its Audit log tab is in view: a
refresh of the versions never waits on the audit (whose query waits up to its timeout
when no worker serves the audit workflow), and showing the tab loads it."""

from __future__ import annotations

import uuid
from typing import Any

import qasync

from desktop.asyncutil import wait_until
from desktop.releases_panel import ReleasesPanel
from runtime import audit
from tests.conftest import Deployment
from tests.kit.desk import connected_session, worker


def test_the_audit_tab_loads_when_shown_not_on_every_refresh(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    target = deployment.target
    subject = f"audit-tab-{uuid.uuid4().hex[:6]}"

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        panel = ReleasesPanel(session=session)
        qtbot.addWidget(panel)
        panel.show()
        async with worker(client, target, f"5.{uuid.uuid4().hex[:6]}"):
            await audit.record(client, target, "release.start", reason="a note", subject=subject)
            await panel.refresh()
            assert panel.versions_model.rowCount() == 1  # the versions did load
            assert panel.audit_model.records == []  # the hidden audit was not read
            panel.tabs.setCurrentWidget(panel.audit_page)
            await wait_until(
                lambda: any(r["subject"] == subject for r in panel.audit_model.records),
                timeout=30,
            )
        await session.stop()

    qloop.run_until_complete(scenario())
