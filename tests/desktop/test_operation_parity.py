"""The CLI and the window are front ends over one operations layer (runtime/releases.py):
for the same action they say the same thing and leave the same audit entry. One
deployment covers set-current and rollback cancel (small member counts, slow resets so a
rollback is still running when it is cancelled); another covers approve."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import qasync

from desktop.asyncutil import wait_until
from desktop.releases_panel import ReleasesPanel
from desktop.rollback_wizard import VERIFY
from runtime import approvals, audit_log, releases
from runtime.members import deployment_query
from runtime.releases import RollbackState
from tests.conftest import Deployment
from tests.kit.cli import cli
from tests.kit.desk import (
    ROLLBACK_TIMEOUT_S,
    Members,
    connected_session,
    desk_session,
    open_queue,
    points,
    row_of,
    unique,
    worker,
)

pytestmark = pytest.mark.slow

REASON = "parity of the front ends"
SAME = ("action", "actor", "reason", "details")  # what must match between front ends


async def audited(client: Any, action: str, subject: str) -> dict[str, Any]:
    for _ in range(50):
        for entry in await audit_log.entries(client, limit=200):
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
                    report = await releases.preview_rollback(
                        client,
                        bad,
                        deployment_query(target.deployment),
                        task_queue=target.task_queue,
                    )
                    handle = await releases.start_rollback(
                        client,
                        target,
                        bad,
                        reason=REASON,
                        preview_id=report.preview_id,
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
                    for e in await audit_log.entries(client, limit=200)
                    if e["action"] == "rollback.cancel" and e["subject"] == bad
                ]
                assert len(entries) == 2, entries  # one per front end, not two for one
                assert entries[0]["details"] == entries[1]["details"]
                assert {e["reason"] for e in entries} == {REASON}
                assert {e["actor"] for e in entries} == {window["actor"]}
        await session.stop()

    qloop.run_until_complete(scenario())


def test_an_approval_from_the_cli_and_from_the_queue_is_the_same_decision(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """Both go through runtime.approvals.decide: the same result and the same entry
    (action, actor, reason, digest, outcome), whichever front end approved."""

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            by_window, by_cli = unique("pw"), unique("pc")
            panel = await open_queue(qtbot, session, deployment, [by_window, by_cli])
            posted: list[str] = []
            panel.status_posted.connect(posted.append)
            grant_w, grant_c = f"{by_window}:{by_window}-k1:0", f"{by_cli}:{by_cli}-k1:0"
            shown = next(r for r in panel.model.rows if r["id"] == grant_c)

            panel.select_row(row_of(panel, grant_w))
            panel.reason.setText(REASON)
            await panel.decide_current(True)
            code, out, err = await cli(
                deployment,
                "approvals",
                "approve",
                grant_c,
                "--digest",
                approvals.shown_digest(shown),
                "--reason",
                REASON,
                "--json",
            )
            assert code == 0, err
            result = json.loads(out)
            # the same outcome, told the same way (the window names the member and action)
            assert posted[-1] == f"{by_window}: grant_points — {result['message']}"
            assert result["message"] == "approved: 100 points granted (ledger #2)"
            assert await points(session, by_window) == await points(session, by_cli) == 200
            window = await audited(client, "approval.approve", grant_w)
            command = await audited(client, "approval.approve", grant_c)
            assert {k: window[k] for k in ("action", "actor", "reason", "outcome")} == {
                k: command[k] for k in ("action", "actor", "reason", "outcome")
            }
            assert window["details"].keys() == command["details"].keys() == {"digest"}
            assert command["details"]["digest"] == approvals.shown_digest(shown)
            tasks = panel.stop()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

    qloop.run_until_complete(scenario())


def test_a_rollback_executed_from_the_cli_and_from_the_wizard_ends_the_same(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """Two builds, each the only one to touch its own members: one rolled back from the
    CLI, one from the wizard. Both preview, start with the preview's expectations and
    verify alike: the same result, the same rollback.start entry."""
    target = deployment.target
    release = f"5.{uuid.uuid4().hex[:6]}"
    by_cli, by_window, fixed = f"{release}.0", f"{release}.1", f"{release}.2"

    async def scenario() -> None:
        session = await connected_session(target)
        client = session.client
        assert client is not None
        panel = ReleasesPanel(session=session)
        qtbot.addWidget(panel)
        first, second = Members(client, target, 2), Members(client, target, 2)
        async with worker(client, target, by_cli), worker(client, target, by_window):
            await first.start()
            await first.feed("a", 3, day=1)  # touched by `by_cli` only
            await panel.set_release(by_window, REASON, None)
            await second.start()
            await second.feed("a", 3, day=1)  # touched by `by_window` only
            async with worker(client, target, fixed):
                await panel.set_release(fixed, REASON, None)

                code, out, err = await cli(
                    deployment, "rollback", by_cli, "--execute", "--reason", REASON, "--json"
                )
                assert code == 0, err
                command = json.loads(out)

                wizard = panel.wizard
                await panel.refresh()
                wizard.build_combo.setCurrentIndex(wizard.build_combo.findData(by_window))
                await wizard.find_affected()
                assert wizard.report is not None and wizard.report.affected == 2
                wizard.reason_edit.setText(REASON)
                await wizard.execute()
                await wait_until(lambda: wizard.step == VERIFY, timeout=ROLLBACK_TIMEOUT_S)
                window = wizard.progress
                assert window is not None

                for result, build in ((command, by_cli), (window.__dict__, by_window)):
                    assert result["bad_build"] == build
                    assert result["state"] == RollbackState.DONE
                    assert (result["total"], result["verified_ok"]) == (2, 2)
                    assert result["mismatches"] == [] and result["not_repairable"] == []
                assert command["counts"] == window.counts
                started = [
                    await audited(client, "rollback.start", build) for build in (by_cli, by_window)
                ]
                # the same entry but for the preview each acted on (its own, by its id)
                for entry in started:
                    assert entry["details"].pop("preview").startswith("rollback-preview-")
                assert {k: started[0][k] for k in SAME} == {k: started[1][k] for k in SAME}
                assert started[0]["details"] == {"query": deployment_query(target.deployment)}
                await second.assert_repaired(fixed)
                await first.assert_repaired(fixed)
            await panel.stop()
        await session.stop()

    qloop.run_until_complete(scenario())
