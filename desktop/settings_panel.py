"""Settings: the Temporal target, the agent's model provider, budgets and thresholds.

Everything but the keys goes to `DATA_DIR/settings.json` (runtime/agent_config.py,
runtime/temporal_settings.py); the keys go to the OS keyring only, and the panel says
which keyring backend holds them, or that there is none. A key field is write-only:
it is never filled back from the keyring, so a secret is never on screen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent, QValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from desktop.asyncutil import async_slot, run_dialog, running_slot_tasks, show_error
from desktop.effects_settings import EffectsSettingsBox
from desktop.preferences import PreferencesBox
from desktop.units import exact_duration_text, parse_duration
from desktop.worker_process import WorkerError

if TYPE_CHECKING:
    from pathlib import Path

    from desktop.session import Session

log = logging.getLogger(__name__)
T = TypeVar("T")

# Every keyring call is a D-Bus round trip (the first also probes the backends, ~0.3 s):
# they run on this one thread, never on the GUI thread, one at a time in the order
# asked, so a status read after a save sees what the save stored.
_KEYRING_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyring")

PROVIDER_CHOICES = (
    ("offline", "Offline rules model (no key, no network)"),
    ("openai", "OpenAI"),
    ("compatible", "OpenAI-compatible endpoint (base URL)"),
)
# the guardrails people tune; the rest keep their defaults unless set in the file
POLICY_FIELDS = (
    "enabled",
    "max_calls_per_day",
    "max_tokens_per_day",
    "points_cap",
    "max_points_per_day",
    "max_turns",
    "auto_approve_max_points",
    "auto_approve_max_points_per_day",
    "proposal_ttl_seconds",
    "breaker_failures",
    "breaker_cooldown_seconds",
    "unusual_trips",
    "unusual_window_seconds",
    "tier_nudge_pct",
    "max_pending",
)


class DurationSpinBox(QSpinBox):
    """A number of seconds, read and typed as "3 days", "2 h 5 min" (or seconds)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSingleStep(60)
        self.setAccelerated(True)

    def textFromValue(self, value: int) -> str:
        return exact_duration_text(value)

    def valueFromText(self, text: str) -> int:
        seconds = parse_duration(text)
        return self.value() if seconds is None else seconds

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        seconds = parse_duration(text)
        if seconds is not None and self.minimum() <= seconds <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        # typing on: "3 da" becomes "3 days"
        return QValidator.State.Intermediate, text, pos


class SettingsPanel(QWidget):
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

        self.embedded_radio = QRadioButton("Embedded server (started with the app)", self)
        self.external_radio = QRadioButton("Existing cluster:", self)
        self._target_group = QButtonGroup(self)
        self._target_group.addButton(self.embedded_radio)
        self._target_group.addButton(self.external_radio)
        self.address_edit = QLineEdit(self)
        self.address_edit.setPlaceholderText("host:port, e.g. my-ns.a1b2c.tmprl.cloud:7233")
        self.namespace_edit = QLineEdit(self)
        self.namespace_edit.setPlaceholderText("default")
        self.cert_edit = QLineEdit(self)
        self.cert_edit.setPlaceholderText("TLS client certificate file (PEM)")
        self.private_edit = QLineEdit(self)
        self.private_edit.setPlaceholderText("TLS client key file (PEM)")
        self.cert_button = QPushButton("Browse…", self)
        self.private_button = QPushButton("Browse…", self)
        self.temporal_key_edit = _secret_edit(self, "temporalApiKey")
        self.temporal_key_status = QLabel(self)
        self.temporal_key_status.setObjectName("temporalKeyStatus")
        self.temporal_key_status.setWordWrap(True)

        self.provider_combo = QComboBox(self)
        self.provider_combo.setObjectName("provider")
        for value, label in PROVIDER_CHOICES:
            self.provider_combo.addItem(label, value)
        self.model_edit = QLineEdit(self)
        self.model_edit.setPlaceholderText("gpt-4o-mini")
        self.base_url_edit = QLineEdit(self)
        self.base_url_edit.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.openai_key_edit = _secret_edit(self, "openaiKey")
        self.openai_key_status = QLabel(self)
        self.openai_key_status.setObjectName("openaiKeyStatus")
        self.openai_key_status.setWordWrap(True)

        self.policy_widgets: dict[str, QSpinBox | QCheckBox] = {}
        # the deployment's guardrails as last read from the server (None: not read yet)
        self._guardrails: dict[str, Any] | None = None
        self.policy_reason = QLineEdit(self)
        self.policy_reason.setObjectName("policyReason")
        self.policy_reason.setPlaceholderText("why they change (recorded in the audit log)")
        self.policy_status = QLabel(self)
        self.policy_status.setObjectName("policyStatus")
        self.policy_status.setWordWrap(True)
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
        column.addWidget(self.preferences)
        column.addWidget(self.keyring_label)
        column.addWidget(self._temporal_box(content))
        column.addWidget(self._model_box(content))
        column.addWidget(self._policy_box(content))
        # where approved effects go: a section of its own (desktop/effects_settings.py)
        self.effects_box = EffectsSettingsBox(session=session, parent=content)
        self.effects_box.status_posted.connect(self.status_posted)
        column.addWidget(self.effects_box)
        column.addStretch(1)
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
        self.external_radio.toggled.connect(self._on_external_radio_toggled)
        self.provider_combo.currentIndexChanged.connect(self._on_provider_combo_changed)
        self.cert_button.clicked.connect(self._on_cert_button_clicked)
        self.private_button.clicked.connect(self._on_private_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.revert_button.clicked.connect(self._on_revert_button_clicked)
        session.client_connected.connect(self._on_session_client_connected)

    @property
    def data_dir(self) -> Path:
        return self._session.target.data_dir

    def _temporal_box(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox("Temporal (applies at the next launch)", parent)
        grid = QGridLayout(box)
        grid.addWidget(self.embedded_radio, 0, 0, 1, 3)
        grid.addWidget(self.external_radio, 1, 0, 1, 3)
        rows = (
            ("Address:", self.address_edit, None),
            ("Namespace:", self.namespace_edit, None),
            ("TLS certificate:", self.cert_edit, self.cert_button),
            ("TLS key file:", self.private_edit, self.private_button),
            ("API key:", self.temporal_key_edit, None),
        )
        for row, (label, edit, button) in enumerate(rows, start=2):
            grid.addWidget(QLabel(label, box), row, 0)
            grid.addWidget(edit, row, 1)
            if button is not None:
                grid.addWidget(button, row, 2)
        grid.addWidget(self.temporal_key_status, len(rows) + 2, 1, 1, 2)
        return box

    def _model_box(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox("Agent model (applies when the worker starts)", parent)
        form = QFormLayout(box)
        form.addRow("Provider:", self.provider_combo)
        form.addRow("Model:", self.model_edit)
        form.addRow("Base URL:", self.base_url_edit)
        form.addRow("API key:", self.openai_key_edit)
        form.addRow("", self.openai_key_status)
        return box

    def _policy_box(self, parent: QWidget) -> QGroupBox:
        from workflows.agent_policy import LIMITS, AgentPolicy

        box = QGroupBox("Agent guardrails (per member; one set for every worker)", parent)
        form = QFormLayout(box)
        form.addRow(self.policy_status)
        defaults = AgentPolicy().as_dict()
        for name in POLICY_FIELDS:
            widget: QSpinBox | QCheckBox
            if isinstance(defaults[name], bool):
                widget = QCheckBox(box)
            elif name.endswith("_seconds"):  # shown in days, hours...; still seconds
                widget = DurationSpinBox(box)
                widget.setRange(0, LIMITS[name])
            else:
                widget = QSpinBox(box)
                widget.setRange(0, LIMITS[name])
                widget.setGroupSeparatorShown(True)
            widget.setObjectName(f"policy_{name}")
            default = defaults[name]
            shown = widget.textFromValue(default) if isinstance(widget, QSpinBox) else default
            hint = " (type e.g. 2 days 6 h, 90 min, 45 s)" if name.endswith("_seconds") else ""
            widget.setToolTip(f"default {shown}{hint}")
            self.policy_widgets[name] = widget
            label = name.removesuffix("_seconds").replace("_", " ").capitalize()
            form.addRow(label + ":", widget)
        form.addRow("Why:", self.policy_reason)
        self._show_guardrails(None)
        return box

    # -- the deployment's guardrails (workflows/guardrails.py) ------------------------

    def _show_guardrails(self, values: dict[str, Any] | None, note: str = "") -> None:
        """Fill the guardrail fields from the deployment's values; without them (not
        connected yet) the fields wait, disabled."""
        self._guardrails = values
        for name, widget in self.policy_widgets.items():
            widget.setEnabled(values is not None)
            if values is None:
                continue
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(values[name]))
            else:
                widget.setValue(int(values[name]))
        self.policy_reason.setEnabled(values is not None)
        self.policy_status.setText(
            note
            or (
                "Read from the deployment when connected: they hold for every worker, "
                "whatever its own settings file says."
            )
        )

    async def load_guardrails(self) -> None:
        """Read the deployment's guardrails from the server into the form."""
        from runtime import guardrails

        client = self._session.client
        if client is None:
            self._show_guardrails(None)
            return
        current = await guardrails.current(client, self._session.target.deployment)
        last = current.changes[-1] if current.changes else None
        note = f"The deployment's guardrails, version {current.version}"
        note += f", last changed by {last['actor']}: {last['reason']}" if last else " (defaults)"
        self._show_guardrails(
            current.policy().as_dict(), note + ". They apply to every worker at once."
        )

    def _guardrail_changes(self) -> tuple[dict[str, Any], list[str]]:
        """(values to set, names back to their default) against what was read."""
        from workflows.agent_policy import AgentPolicy

        if self._guardrails is None:
            return {}, []
        defaults = AgentPolicy().as_dict()
        values: dict[str, Any] = {}
        reset: list[str] = []
        for name, widget in self.policy_widgets.items():
            value = widget.isChecked() if isinstance(widget, QCheckBox) else widget.value()
            if value == self._guardrails[name]:
                continue
            if value == defaults[name]:
                reset.append(name)
            else:
                values[name] = value
        return values, reset

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
        self.external_radio.setChecked(bool(saved.address))
        self.embedded_radio.setChecked(not saved.address)
        self.address_edit.setText(saved.address or "")
        self.namespace_edit.setText(saved.namespace or "")
        self.cert_edit.setText(saved.tls_cert_path or "")
        self.private_edit.setText(saved.tls_private_path or "")
        model = self._raw.get("model") or {}
        provider = model.get("provider", "offline")
        if provider == "openai" and model.get("base_url"):
            provider = "compatible"
        self.provider_combo.setCurrentIndex(max(0, self.provider_combo.findData(provider)))
        self.model_edit.setText(str(model.get("model") or ""))
        self.base_url_edit.setText(str(model.get("base_url") or ""))
        if self._guardrails is not None:
            self._show_guardrails(self._guardrails, self.policy_status.text())
        self.policy_reason.clear()
        self.temporal_key_edit.clear()
        self.openai_key_edit.clear()
        self._show_enabled()
        if self._keyring_shown:
            self._on_keyring_changed()

    def collect(self) -> dict[str, Any]:
        """The settings the form describes, keys excluded (other sections are kept)."""
        # an "agent" section is not carried: the guardrails live on the server
        raw = {k: v for k, v in self._raw.items() if k not in ("temporal", "model", "agent")}
        if self.external_radio.isChecked():
            temporal = {
                "address": self.address_edit.text().strip(),
                "namespace": self.namespace_edit.text().strip(),
                "tls_cert_path": self.cert_edit.text().strip(),
                "tls_private_path": self.private_edit.text().strip(),
            }
            raw["temporal"] = {k: v for k, v in temporal.items() if v}
        provider = self.provider_combo.currentData()
        model: dict[str, Any] = dict(self._raw.get("model") or {})
        model["provider"] = "offline" if provider == "offline" else "openai"
        for key, text in (("model", self.model_edit.text()), ("base_url", "")):
            model.pop(key, None)
            if text.strip():
                model[key] = text.strip()
        if provider == "compatible":
            model["base_url"] = self.base_url_edit.text().strip()
        raw["model"] = model
        return raw

    async def save(self) -> str | None:
        """Validate, store the keys in the keyring, write the file; the outcome or None
        when refused (the one-line reason is shown and nothing changed). While it runs
        the form and its buttons are disabled: a second Save cannot overlap it."""
        from runtime import agent_config, guardrails, secrets, temporal_settings

        if self.saving:
            return None
        raw = self.collect()
        problem = self._check(raw)
        policy_set, policy_reset = self._guardrail_changes()
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
                    held_by = await _in_keyring_thread(_store_keys, keys, endpoint)
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

    def _ask(self, name: str, title: str, text: str, detail: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self)
        box.setObjectName(name)
        box.setInformativeText(detail)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        self.question = box
        return box

    @async_slot(overlap="skip", title="Restarting the worker")
    async def offer_worker_restart(self) -> bool:
        """The model changed: restart the app's worker now (asked)? True when it was
        restarted."""
        worker = self._session.worker
        if worker is None or worker.state != "running":
            self._say(self.message.text() + " The worker uses them when it next starts.")
            return False
        box = self._ask(
            "restartWorkerQuestion",
            "Restart the worker?",
            "The app's worker reads the model when it starts. Restart it now?",
            "A new worker starts first and takes over; the old one stops only once the new "
            "one polls, so no event waits and none is lost.",
        )
        answer = await run_dialog(box)
        self.question = None
        if answer != QMessageBox.StandardButton.Yes:
            self._say(self.message.text() + " The worker uses them when it next starts.")
            return False
        self._say("Restarting the worker…")
        try:
            await self._session.restart_worker()
        except WorkerError as error:
            self._tell_failed_handover(error)
            return False
        text = f"Worker restarted with the new settings (build {self._session.worker_build})."
        self._say(text)
        self.status_posted.emit(text)
        return True

    def _tell_failed_handover(self, error: WorkerError) -> None:
        """The new worker did not come up: why (its log's last line), and who serves."""
        lines = [line for line in error.log_tail.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else ""
        worker = self._session.worker
        if worker is not None and worker.state == "running":
            serving = f"the old worker (build {self._session.worker_build}) keeps serving"
        else:
            serving = "no worker of this app runs now: events wait until one starts"
        text = f"The new worker did not start ({error.reason}" + (f": {why}" if why else "")
        text += f"); {serving}."
        self._say(text)
        self.status_posted.emit(text)
        box = show_error(self.window(), "The new worker did not start", error)
        box.setObjectName("workerHandoverError")
        box.setText(f"{error.reason}; {serving}.")
        self.handover_error = box

    @async_slot(overlap="skip", title="Relaunching")
    async def offer_relaunch(self) -> bool:
        """The Temporal target changed: it applies at the next launch; relaunch now?"""
        box = self._ask(
            "relaunchQuestion",
            "Relaunch Loyalty Desk?",
            "The Temporal target applies when the app next starts. Relaunch now?",
            "The app closes (its worker and embedded server stop cleanly) and starts again "
            "with the new target.",
        )
        answer = await run_dialog(box)
        self.question = None
        if answer != QMessageBox.StandardButton.Yes:
            self._say(self.message.text() + " It applies at the next launch.")
            return False
        self.relaunch_requested.emit()
        return True

    def _check(self, raw: dict[str, Any]) -> str | None:
        temporal = raw.get("temporal")
        if self.external_radio.isChecked() and not (temporal or {}).get("address"):
            return "An existing cluster needs an address (host:port)."
        address = str((temporal or {}).get("address", ""))
        if address and (":" not in address or not address.rsplit(":", 1)[1].isdigit()):
            return f"The address {address!r} is not host:port."
        if self.provider_combo.currentData() == "compatible" and not raw["model"].get("base_url"):
            return "An OpenAI-compatible endpoint needs its base URL."
        return None

    async def show_keyring(self) -> None:
        """Which backend holds the keys, whether each is stored, or that there is none."""
        from runtime import secrets

        view = await _in_keyring_thread(_read_keyring)
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

    def _show_enabled(self) -> None:
        external = self.external_radio.isChecked()
        for widget in (
            self.address_edit,
            self.namespace_edit,
            self.cert_edit,
            self.private_edit,
            self.cert_button,
            self.private_button,
            self.temporal_key_edit,
        ):
            widget.setEnabled(external)
        provider = self.provider_combo.currentData()
        self.model_edit.setEnabled(provider != "offline")
        self.base_url_edit.setEnabled(provider == "compatible")
        self.openai_key_edit.setEnabled(provider != "offline")

    # -- slots --------------------------------------------------------------------

    def _on_external_radio_toggled(self, _checked: bool) -> None:
        self._show_enabled()

    def _on_provider_combo_changed(self, _index: int) -> None:
        self._show_enabled()

    @async_slot(overlap="skip", title="Choosing a file")
    async def _on_cert_button_clicked(self) -> None:
        await self._browse(self.cert_edit, "TLS client certificate")

    @async_slot(overlap="skip", title="Choosing a file")
    async def _on_private_button_clicked(self) -> None:
        await self._browse(self.private_edit, "TLS client key")

    async def _browse(self, edit: QLineEdit, title: str) -> None:
        from desktop.asyncutil import run_dialog

        dialog = QFileDialog(self, title, edit.text() or str(self.data_dir))
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        if await run_dialog(dialog) and dialog.selectedFiles():
            edit.setText(dialog.selectedFiles()[0])

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


@dataclass(frozen=True)
class KeyringView:
    """What the panel shows of the keyring: never a secret, only whether one is there."""

    usable: bool
    backend: str
    service: str
    stored: dict[str, bool]


def _read_keyring() -> KeyringView:
    from runtime import secrets

    statuses = [secrets.status(name) for name in ("openai", "temporal")]
    first = statuses[0]
    return KeyringView(
        first.usable, first.backend, first.service, {s.name: s.stored for s in statuses}
    )


def _store_keys(keys: dict[str, str], endpoint: str | None = None) -> str:
    """Store every key (the model key for `endpoint` only); the backend that holds them.
    SecretsError with the reason."""
    from runtime import secrets

    if not secrets.usable():
        raise secrets.SecretsError("cannot store the key: " + secrets.no_backend_message())
    held_by = ""
    for name, value in keys.items():
        held_by = secrets.set_secret(name, value, endpoint=endpoint)
    return held_by


async def _in_keyring_thread(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_KEYRING_THREAD, call, *args)


def _secret_edit(parent: QWidget, name: str) -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setObjectName(name)
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText("paste a key to store it in the keyring")
    return edit


__all__ = ["SettingsPanel"]
