"""Settings: the Temporal target, the agent's model provider, budgets and thresholds.

Everything but the keys goes to `DATA_DIR/settings.json` (runtime/agent_config.py,
runtime/temporal_settings.py); the keys go to the OS keyring only, and the panel says
which keyring backend holds them, or that there is none. A key field is write-only:
it is never filled back from the keyring, so a secret is never on screen.

Each section is a widget of its own: the Temporal target and the model
(desktop/settings_sections.py), the deployment's guardrails
(desktop/settings_guardrails.py), where effects go (desktop/effects_settings.py); the
keyring calls are in desktop/settings_keyring.py, the questions asked after a save in
desktop/settings_restart.py. The panel saves them together.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from desktop.asyncutil import async_slot, running_slot_tasks
from desktop.effects_settings import EffectsSettingsBox
from desktop.preferences import PreferencesBox
from desktop.settings_guardrails import GuardrailsBox
from desktop.settings_keyring import in_keyring_thread, read_keyring, store_keys
from desktop.settings_restart import RestartQuestions
from desktop.settings_sections import ModelBox, TemporalBox

if TYPE_CHECKING:
    from pathlib import Path

    from desktop.session import Session

log = logging.getLogger(__name__)


class SettingsPanel(RestartQuestions, QWidget):
    """Edits settings.json and the keyring; never writes a secret to a file.

    Signals:
        saved(path): the settings file was written.
        status_posted(text): a one-line outcome for the window's status bar.
        relaunch_requested: the operator chose to relaunch for a new Temporal target.
    """

    saved = Signal(str)
    status_posted = Signal(str)
    relaunch_requested = Signal()

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._raw: dict[str, Any] = {}
        # asked when the panel is first shown, not while the window opens
        self._keyring_shown = False
        self.saving = False
        # the question asked after a save that needs a worker restart or a relaunch
        self.question: QMessageBox | None = None
        # the dialog that told of a worker that did not take over (its log's tail inside)
        self.handover_error: QMessageBox | None = None

        self.keyring_label = QLabel(self)
        self.keyring_label.setObjectName("keyringBackend")
        self.keyring_label.setWordWrap(True)
        self.message = QLabel(self)
        self.message.setObjectName("settingsMessage")
        self.message.setWordWrap(True)
        self.save_button = QPushButton("Save", self)
        self.save_button.setDefault(True)
        self.revert_button = QPushButton("Revert", self)

        content = self._content = QWidget(self)
        column = QVBoxLayout(content)
        self.preferences = PreferencesBox(content)
        self.temporal_box = TemporalBox(lambda: self.data_dir, content)
        self.model_box = ModelBox(content)
        self.guardrails = GuardrailsBox(content)
        # where approved effects go: a section of its own (desktop/effects_settings.py)
        self.effects_box = EffectsSettingsBox(session=session, parent=content)
        self.effects_box.status_posted.connect(self.status_posted)
        sections: tuple[QWidget, ...] = (
            self.preferences,
            self.keyring_label,
            self.temporal_box,
            self.model_box,
            self.guardrails,
            self.effects_box,
        )
        for widget in sections:
            column.addWidget(widget)
        column.addStretch(1)
        # the sections' fields, by the names the window and its tests use
        temporal, model = self.temporal_box, self.model_box
        self.embedded_radio, self.external_radio = temporal.embedded_radio, temporal.external_radio
        self.address_edit, self.namespace_edit = temporal.address_edit, temporal.namespace_edit
        self.cert_edit, self.private_edit = temporal.cert_edit, temporal.private_edit
        self.temporal_key_edit, self.temporal_key_status = temporal.key_edit, temporal.key_status
        self.provider_combo, self.model_edit = model.provider_combo, model.model_edit
        self.base_url_edit = model.base_url_edit
        self.openai_key_edit, self.openai_key_status = model.key_edit, model.key_status
        self.policy_widgets = self.guardrails.widgets
        self.policy_reason, self.policy_status = self.guardrails.reason, self.guardrails.status

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)

        self.load()
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.revert_button.clicked.connect(self._on_revert_button_clicked)
        session.client_connected.connect(self._on_session_client_connected)

    @property
    def data_dir(self) -> Path:
        return self._session.target.data_dir

    async def load_guardrails(self) -> None:
        """Read the deployment's guardrails from the server into the form."""
        await self.guardrails.load(self._session.client, self._session.target.deployment)

    # -- load / save ----------------------------------------------------------------

    def load(self) -> None:
        """Fill the form from the file and the keyring's state (never its secrets)."""
        from runtime import temporal_settings

        try:
            self._raw = temporal_settings.read_raw(self.data_dir)
            saved = temporal_settings.from_raw(self._raw)
        except temporal_settings.TemporalSettingsError as error:
            self._raw = {}
            saved = temporal_settings.TemporalSettings()
            self._say(f"The settings file is not usable ({error}); showing the defaults.")
        self.temporal_box.fill(saved)
        self.model_box.fill(self._raw.get("model") or {})
        if self.guardrails.read is not None:
            self.guardrails.show_values(self.guardrails.read, self.guardrails.status.text())
        self.guardrails.reason.clear()
        if self._keyring_shown:
            self._on_keyring_changed()

    def collect(self) -> dict[str, Any]:
        """The settings the form describes, keys excluded (other sections are kept)."""
        # an "agent" section is not carried: the guardrails live on the server
        raw = {k: v for k, v in self._raw.items() if k not in ("temporal", "model", "agent")}
        temporal = self.temporal_box.collect()
        if temporal is not None:
            raw["temporal"] = temporal
        raw["model"] = self.model_box.collect(self._raw.get("model") or {})
        return raw

    def _check(self, raw: dict[str, Any]) -> str | None:
        return self.temporal_box.problem(raw.get("temporal")) or self.model_box.problem(
            raw["model"]
        )

    async def save(self) -> str | None:
        """Validate, store the keys in the keyring, write the file; the outcome or None
        when refused (the one-line reason is shown and nothing changed). While it runs
        the form and its buttons are disabled: a second Save cannot overlap it."""
        from runtime import agent_config, guardrails, secrets, temporal_settings

        if self.saving:
            return None
        raw = self.collect()
        problem = self._check(raw)
        policy_set, policy_reset = self.guardrails.changes()
        changing_guardrails = bool(policy_set or policy_reset)
        if problem is None and changing_guardrails:
            if self._session.client is None:
                problem = (
                    "Not connected: the guardrails live on the server; try again when it runs."
                )
            elif not self.policy_reason.text().strip():
                problem = "Say why the guardrails change: it goes in the audit log."
        if problem is None:
            try:
                temporal_settings.from_raw(raw)
                agent_config.model_config(raw)
            except ValueError as error:
                problem = str(error)
        keys = {
            name: edit.text().strip()
            for name, edit in (
                (temporal_settings.API_KEY_SECRET, self.temporal_key_edit),
                ("openai", self.openai_key_edit),
            )
            if edit.text().strip()
        }
        if problem is not None:
            self._say(problem)
            return None
        held_by = ""
        self._set_saving(True)
        try:
            if keys:
                try:
                    # the model key goes to the endpoint being saved with it, and nowhere else
                    endpoint = agent_config.model_config(raw).base_url
                    held_by = await in_keyring_thread(store_keys, keys, endpoint)
                except secrets.SecretsError as error:
                    self._say(str(error))
                    return None
            path = agent_config.save(self.data_dir, raw)
            previous, self._raw = self._raw, raw
            audit_note = await self._audit_saved(previous, raw, list(keys), held_by)
            if changing_guardrails:
                assert self._session.client is not None
                try:
                    changed = await guardrails.change(
                        self._session.client,
                        self._session.target,
                        policy_set,
                        reason=self.policy_reason.text().strip(),
                        reset=policy_reset,
                    )
                except guardrails.GuardrailsError as error:
                    self._say(f"Settings saved; the guardrails were refused: {error}")
                    return None
                self.policy_reason.clear()
                await self.load_guardrails()
                guardrails_note = f"; guardrails version {changed.version} for every worker"
            else:
                guardrails_note = ""
            self.temporal_key_edit.clear()
            self.openai_key_edit.clear()
            self._keyring_shown = True
            await self.show_keyring()
        finally:
            self._set_saving(False)
        outcome = (
            f"Saved to {path}"
            + (
                f"; {len(keys)} key{'s' if len(keys) > 1 else ''} stored in {held_by}"
                if keys
                else ""
            )
            + guardrails_note
            + audit_note
        )
        self._say(outcome)
        self.saved.emit(str(path))
        self.status_posted.emit(outcome)
        # the guardrails apply at the next agent run; only the model needs the worker again
        worker_settings = previous.get("model") != raw.get("model")
        target = previous.get("temporal") != raw.get("temporal")
        if target or temporal_settings.API_KEY_SECRET in keys:
            self.offer_relaunch()
        elif worker_settings or "openai" in keys:
            self.offer_worker_restart()
        return outcome

    async def _audit_saved(
        self, before: dict[str, Any], after: dict[str, Any], stored: list[str], backend: str
    ) -> str:
        """Record what changed (names only); what to add to the outcome when it could not be."""
        from runtime import audit

        client = self._session.client
        if client is None:
            return "; not recorded in the audit log (not connected)"
        try:
            await audit.record_saved_settings(
                client,
                self._session.target,
                before,
                after,
                secrets_stored=stored,
                backend=backend,
                reason=self.policy_reason.text(),
            )
        except Exception as error:  # the change stands; the operator is told
            log.warning("settings change not audited: %s", error)
            return "; not recorded in the audit log: " + (str(error).splitlines() or ["?"])[0]
        return ""

    async def show_keyring(self) -> None:
        """Which backend holds the keys, whether each is stored, or that there is none."""
        from runtime import secrets

        view = await in_keyring_thread(read_keyring)
        for name, label in (
            ("openai", self.openai_key_status),
            ("temporal", self.temporal_key_status),
        ):
            if not view.usable:
                label.setText("No keyring: a key cannot be stored.")
            elif view.stored[name]:
                label.setText(f"A key is stored in {view.backend}. Type a new one to replace it.")
            else:
                label.setText(f"No key stored yet; it would go to {view.backend}.")
        if view.usable:
            self.keyring_label.setText(
                f"Keys are kept in the OS keyring ({view.backend}, service "
                f"'{view.service}'), never in {self.data_dir / 'settings.json'}."
            )
            theme.set_tone(self.keyring_label, "")
        else:
            message = secrets.no_backend_message()
            self.keyring_label.setText(message[:1].upper() + message[1:] + ".")
            theme.set_tone(self.keyring_label, "bad")

    def showEvent(self, event: QShowEvent) -> None:
        if self._session.client is not None:
            self._on_guardrails_wanted()
        if not self._keyring_shown:
            self._keyring_shown = True
            self.keyring_label.setText("Asking the OS keyring…")
            self._on_keyring_changed()
        super().showEvent(event)

    def _set_saving(self, saving: bool) -> None:
        self.saving = saving
        for widget in (self._content, self.save_button, self.revert_button):
            widget.setEnabled(not saving)
        if saving:
            self._say("Saving…")

    def stop(self) -> list[asyncio.Task[Any]]:
        """At close, a save under way finishes (its keys and its file go together):
        the tasks to await."""
        return running_slot_tasks(self)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    @async_slot(overlap="skip", title="Saving settings")
    async def _on_save_button_clicked(self) -> None:
        await self.save()

    def _on_session_client_connected(self, _client: object) -> None:
        if self.isVisible():
            self._on_guardrails_wanted()

    @async_slot(overlap="restart", errors="status", title="Reading the guardrails")
    async def _on_guardrails_wanted(self) -> None:
        await self.load_guardrails()

    @async_slot(overlap="restart", errors="status", title="Reading the keyring")
    async def _on_keyring_changed(self) -> None:
        await self.show_keyring()

    def _on_revert_button_clicked(self) -> None:
        self.load()
        self._say("Reverted to the saved settings.")


__all__ = ["SettingsPanel"]
