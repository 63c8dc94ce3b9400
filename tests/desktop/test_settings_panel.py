"""The Settings panel against the real OS keyring: keys go to the keyring, never to a
file; the saved target and model are what the CLI and the worker then read."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import keyring
import qasync
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSpinBox

from desktop.asyncutil import wait_until
from desktop.session import Session
from desktop.settings_panel import SettingsPanel
from runtime import agent_config, audit_log, guardrails, secrets
from runtime.connect import Target, resolve_target
from tests.conftest import Deployment
from workflows.agent_policy import LIMITS, AgentPolicy


def make_panel(qtbot: Any, loop: qasync.QEventLoop, data_dir: Path) -> SettingsPanel:
    """The panel shown, once it has shown what the keyring holds (asked off the GUI thread)."""
    session = Session(
        target=Target(address=None, namespace="default", data_dir=data_dir), start_worker=False
    )
    panel = SettingsPanel(session=session)
    qtbot.addWidget(panel)
    asking = "Asking the OS keyring…"

    async def show() -> None:
        panel.show()
        assert panel.keyring_label.text() == asking
        await wait_until(lambda: panel.keyring_label.text() != asking, timeout=10)

    loop.run_until_complete(show())
    return panel


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_keys_go_to_the_keyring_and_never_to_a_file(
    qtbot: Any, qloop: qasync.QEventLoop, tmp_path: Path, real_keyring: str
) -> None:
    data_dir = tmp_path / "data"
    panel = make_panel(qtbot, qloop, data_dir)
    backend = secrets.backend_name()
    assert backend in panel.keyring_label.text()
    assert "No key stored yet" in panel.openai_key_status.text()
    model_key = f"sk-SENTINEL-{uuid.uuid4().hex}"
    cloud_key = f"tc-SENTINEL-{uuid.uuid4().hex}"

    panel.provider_combo.setCurrentIndex(panel.provider_combo.findData("compatible"))
    panel.model_edit.setText("local-model")
    panel.base_url_edit.setText("http://127.0.0.1:8000/v1")
    panel.openai_key_edit.setText(model_key)
    panel.external_radio.setChecked(True)
    panel.address_edit.setText("temporal.example.internal:7233")
    panel.namespace_edit.setText("ops")
    panel.temporal_key_edit.setText(cloud_key)
    saves: list[str] = []
    panel.saved.connect(saves.append)

    async def save_twice() -> None:
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
        await asyncio.sleep(0)
        # the keyring is written off the GUI thread: meanwhile the form cannot be sent again
        assert panel.message.text() == "Saving…"
        assert not panel.save_button.isEnabled() and not panel.openai_key_edit.isEnabled()
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
        await wait_until(lambda: not panel.saving, timeout=10)

    qloop.run_until_complete(save_twice())

    assert len(saves) == 1
    assert panel.save_button.isEnabled() and panel.openai_key_edit.isEnabled()
    assert panel.message.text().startswith("Saved to ")
    assert f"2 keys stored in {backend}" in panel.message.text()
    assert keyring.get_password(real_keyring, "openai") == model_key
    assert keyring.get_password(real_keyring, "temporal") == cloud_key
    assert files_containing(data_dir, "SENTINEL") == []
    assert panel.openai_key_edit.text() == "" and panel.temporal_key_edit.text() == ""
    assert panel.openai_key_status.text().startswith(f"A key is stored in {backend}")

    saved = json.loads((data_dir / "settings.json").read_text())
    assert saved["temporal"] == {"address": "temporal.example.internal:7233", "namespace": "ops"}
    config = agent_config.load(data_dir)  # what the worker reads
    assert (config.provider, config.model, config.base_url) == (
        "openai",
        "local-model",
        "http://127.0.0.1:8000/v1",
    )
    assert config.policy == {}  # guardrails are the deployment's, never a file's
    target = resolve_target(data_dir=data_dir)  # what the CLI and the next launch use
    assert (target.address, target.namespace) == ("temporal.example.internal:7233", "ops")

    again = make_panel(qtbot, qloop, data_dir)  # reopened: values back, the key never shown
    assert again.external_radio.isChecked()
    assert again.address_edit.text() == "temporal.example.internal:7233"
    assert again.provider_combo.currentData() == "compatible"
    assert not again.policy_widgets["max_calls_per_day"].isEnabled()  # not connected
    assert again.openai_key_edit.text() == ""


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(
    qtbot: Any, qloop: qasync.QEventLoop, tmp_path: Path, real_keyring: str
) -> None:
    data_dir = tmp_path / "data"
    panel = make_panel(qtbot, qloop, data_dir)
    panel.external_radio.setChecked(True)
    panel.address_edit.setText("no-port-here")
    panel.openai_key_edit.setText("sk-should-not-be-stored")
    assert qloop.run_until_complete(panel.save()) is None
    assert panel.message.text() == "The address 'no-port-here' is not host:port."
    assert not (data_dir / "settings.json").exists()
    assert keyring.get_password(real_keyring, "openai") is None


def test_without_a_keyring_the_panel_says_so_and_refuses_keys(
    qtbot: Any, qloop: qasync.QEventLoop, tmp_path: Path, real_keyring: str
) -> None:
    data_dir = tmp_path / "data"
    real = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        panel = make_panel(qtbot, qloop, data_dir)
        assert panel.keyring_label.text().startswith("No OS keyring backend is available")
        assert panel.openai_key_status.text() == "No keyring: a key cannot be stored."
        panel.provider_combo.setCurrentIndex(panel.provider_combo.findData("openai"))
        panel.openai_key_edit.setText("sk-nowhere-to-go")
        assert qloop.run_until_complete(panel.save()) is None
        assert panel.message.text().startswith("cannot store the key: no OS keyring backend")
        assert not (data_dir / "settings.json").exists()
        assert panel.openai_key_edit.text() == "sk-nowhere-to-go"  # still there to retry
        panel.openai_key_edit.clear()  # without a key the rest saves fine
        assert qloop.run_until_complete(panel.save()) is not None
        assert agent_config.load(data_dir).provider == "openai"
    finally:
        keyring.set_keyring(real)


def test_guardrails_are_the_deployments_and_change_with_a_reason(
    qtbot: Any, qloop: qasync.QEventLoop, deployment: Deployment
) -> None:
    """The guardrail fields show the deployment's values (every worker's), and saving a
    change needs a reason, goes to the server and the audit log, never to the file."""
    session = Session(target=deployment.target, start_worker=False)
    session.client = deployment.client
    panel = SettingsPanel(session=session)
    qtbot.addWidget(panel)
    cap = panel.policy_widgets["max_points_per_day"]
    assert isinstance(cap, QSpinBox)

    async def scenario() -> None:
        async with deployment.worker():
            panel.show()
            await wait_until(cap.isEnabled, timeout=10)
            assert cap.value() == AgentPolicy().max_points_per_day
            assert cap.maximum() == LIMITS["max_points_per_day"]
            cap.setValue(700)
            assert await panel.save() is None
            assert (
                panel.message.text() == "Say why the guardrails change: it goes in the audit log."
            )
            panel.policy_reason.setText("quiet season")
            outcome = await panel.save()
            assert outcome is not None and outcome.endswith("guardrails version 1 for every worker")
            current = await guardrails.current(deployment.client, deployment.target.deployment)
            assert current.values == {"max_points_per_day": 700}
            assert "version 1, last changed by" in panel.policy_status.text()
            entries = await audit_log.entries(deployment.client)
            mine = [e for e in entries if e["subject"] == deployment.target.deployment]
            assert mine[0]["action"] == "guardrails.set" and mine[0]["reason"] == "quiet season"
            # back to the default: the value is reset, not pinned
            cap.setValue(AgentPolicy().max_points_per_day)
            panel.policy_reason.setText("season over")
            assert await panel.save() is not None
            current = await guardrails.current(deployment.client, deployment.target.deployment)
            assert current.values == {} and current.version == 2
        saved = json.loads((deployment.target.data_dir / "settings.json").read_text())
        assert "agent" not in saved

    qloop.run_until_complete(scenario())


def test_the_proposal_ttl_reads_and_is_typed_in_days_and_hours_and_stays_seconds(
    qtbot: Any, qloop: qasync.QEventLoop, deployment: Deployment
) -> None:
    """259,200 seconds shows as "3 days"; "2 days 6 h" typed is 194,400 seconds on the
    server; text that is no duration changes nothing."""
    session = Session(target=deployment.target, start_worker=False)
    session.client = deployment.client
    panel = SettingsPanel(session=session)
    qtbot.addWidget(panel)
    ttl = panel.policy_widgets["proposal_ttl_seconds"]
    assert isinstance(ttl, QSpinBox)

    async def scenario() -> None:
        async with deployment.worker():
            panel.show()
            await wait_until(ttl.isEnabled, timeout=10)
            assert ttl.value() == AgentPolicy().proposal_ttl_seconds == 259_200
            assert ttl.text() == "3 days"
            assert ttl.toolTip().startswith("default 3 days")

            def type_in(text: str) -> None:
                ttl.setFocus()
                ttl.lineEdit().selectAll()
                qtbot.keyClicks(ttl, text)
                qtbot.keyClick(ttl, Qt.Key.Key_Tab)

            type_in("soon")
            assert ttl.value() == 259_200  # not a duration: the value stays
            type_in("2 days 6 h")
            assert ttl.value() == 194_400 and ttl.text() == "2 days 6 h"
            panel.policy_reason.setText("shorter waits")
            assert await panel.save() is not None
            current = await guardrails.current(deployment.client, deployment.target.deployment)
            assert current.values == {"proposal_ttl_seconds": 194_400}
            ttl.setValue(90_061)  # an odd number of seconds reads back exactly
            assert ttl.text() == "1 day 1 h 1 min 1 s"
            ttl.lineEdit().setText(ttl.text())
            ttl.interpretText()
            assert ttl.value() == 90_061

    qloop.run_until_complete(scenario())
