"""The CLI and the window are front ends over one operations layer (runtime/releases.py):
for the same action they say the same thing and leave the same audit entry. One
deployment covers set-current and rollback cancel (small member counts, slow resets so a
rollback is still running when it is cancelled)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import qasync

from desktop.releases_panel import ReleasesPanel
from runtime import audit, releases
from runtime.members import deployment_query
from runtime.releases import RollbackState
from tests.conftest import Deployment
from tests.desktop.test_rollback_wizard import Members, connected_session, worker
from tests.runtime.test_cli import cli

pytestmark = pytest.mark.slow

REASON = "parity of the front ends"
SAME = ("action", "actor", "reason", "details")  # what must match between front ends


async def audited(client: Any, action: str, subject: str) -> dict[str, Any]:
    for _ in range(50):
        for entry in await audit.entries(client, limit=200):
            if entry["action"] == action and entry["subject"] == subject:
                return entry
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {action} entry for {subject}")


def test_cli_and_window_say_and_audit_the_same(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    target = deployment.target
    release = f"6.{uuid.uuid4().hex[:6]}"
    bad, by_window, by_cli = f"{release}.0", f"{release}.1", f"{release}.2"

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        panel = ReleasesPanel(session=session)
        qtbot.addWidget(panel)
        members = Members(client, target, 4)
        async with worker(client, target, bad), worker(client, target, by_window):
            async with worker(client, target, by_cli):
                await members.start()
                await members.feed("a", 3, day=1)  # every member touched by `bad`

                # set-current: the same message and the same entry, whichever front end
                await panel.set_release(by_window, REASON, None)
                code, out, err = await cli(
                    deployment, "release", "set-current", by_cli, "--reason", REASON
                )
                assert code == 0, err
                assert panel.message.text() == f"build {by_window} is now current"
                assert out.strip() == f"build {by_cli} is now current"
                window = await audited(client, "release.set-current", by_window)
                command = await audited(client, "release.set-current", by_cli)
                assert {k: window[k] for k in SAME} == {k: command[k] for k in SAME}
                assert window["outcome"] == panel.message.text()
                assert command["outcome"] == out.strip()

                # rollback cancel: the window's Cancel and the CLI's --cancel both go
                # through control_rollback: one entry each, the rollback ends cancelled
                wizard = panel.wizard
                for front_end in ("window", "cli"):
                    handle = await releases.start_rollback(
                        client,
                        target,
                        bad,
                        reason=REASON,
                        rate_per_second=0.1,
                        concurrency=1,
                        query=deployment_query(target.deployment),
                    )
                    if front_end == "window":
                        wizard.build = bad
                        wizard.reason_edit.setText(REASON)
                        await wizard.control("cancel")
                        assert wizard.progress is not None
                    else:
                        code, out, err = await cli(
                            deployment, "rollback", bad, "--cancel", "--reason", REASON, "--json"
                        )
                        assert code == 0, err
                        assert json.loads(out)["bad_build"] == bad
                    result = await asyncio.wait_for(handle.result(), 60)
                    assert result.state == RollbackState.CANCELLED
                    assert result.counts.get("cancelled", 0) >= 1, result.counts
                entries = [
                    e
                    for e in await audit.entries(client, limit=200)
                    if e["action"] == "rollback.cancel" and e["subject"] == bad
                ]
                assert len(entries) == 2, entries  # one per front end, not two for one
                assert entries[0]["details"] == entries[1]["details"]
                assert {e["reason"] for e in entries} == {REASON}
                assert {e["actor"] for e in entries} == {window["actor"]}
        await session.stop()

    qloop.run_until_complete(scenario())
