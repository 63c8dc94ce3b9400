"""The Settings panel's two file-backed sections: the Temporal target (applies at the
next launch) and the agent's model (applies when the worker starts). Each fills itself
from the settings file's section, gives back what it describes, and says in one line
what is wrong with it; the panel saves them together (desktop/settings_panel.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from desktop.asyncutil import async_slot, run_dialog
from desktop.layouts import choices, form, label, line_edit
from desktop.settings_keyring import secret_edit

PROVIDER_CHOICES = (
    ("offline", "Offline rules model (no key, no network)"),
    ("openai", "OpenAI"),
    ("compatible", "OpenAI-compatible endpoint (base URL)"),
)


class TemporalBox(QGroupBox):
    """The embedded server, or an existing cluster's address, namespace, TLS files and
    API key (the key goes to the keyring, never to the file)."""

    def __init__(self, data_dir: Callable[[], Path], parent: QWidget | None = None) -> None:
        super().__init__("Temporal (applies at the next launch)", parent)
        self._data_dir = data_dir
        self.embedded_radio = QRadioButton("Embedded server (started with the app)", self)
        self.external_radio = QRadioButton("Existing cluster:", self)
        self._target_group = QButtonGroup(self)
        self._target_group.addButton(self.embedded_radio)
        self._target_group.addButton(self.external_radio)
        self.address_edit = line_edit(self, "host:port, e.g. my-ns.a1b2c.tmprl.cloud:7233")
        self.namespace_edit = line_edit(self, "default")
        self.cert_edit = line_edit(self, "TLS client certificate file (PEM)")
        self.private_edit = line_edit(self, "TLS client key file (PEM)")
        self.cert_button = QPushButton("Browse…", self)
        self.private_button = QPushButton("Browse…", self)
        self.key_edit = secret_edit(self, "temporalApiKey")
        self.key_status = QLabel(self)
        self.key_status.setObjectName("temporalKeyStatus")
        self.key_status.setWordWrap(True)

        grid = QGridLayout(self)
        grid.addWidget(self.embedded_radio, 0, 0, 1, 3)
        grid.addWidget(self.external_radio, 1, 0, 1, 3)
        rows = (
            ("Address:", self.address_edit, None),
            ("Namespace:", self.namespace_edit, None),
            ("TLS certificate:", self.cert_edit, self.cert_button),
            ("TLS key file:", self.private_edit, self.private_button),
            ("API key:", self.key_edit, None),
        )
        for row, (title, edit, button) in enumerate(rows, start=2):
            grid.addWidget(QLabel(title, self), row, 0)
            grid.addWidget(edit, row, 1)
            if button is not None:
                grid.addWidget(button, row, 2)
        grid.addWidget(self.key_status, len(rows) + 2, 1, 1, 2)
        self.external_radio.toggled.connect(self._on_external_radio_toggled)
        self.cert_button.clicked.connect(self._on_cert_button_clicked)
        self.private_button.clicked.connect(self._on_private_button_clicked)

    def fill(self, saved: Any) -> None:
        """From the saved TemporalSettings (runtime/temporal_settings.py)."""
        self.external_radio.setChecked(bool(saved.address))
        self.embedded_radio.setChecked(not saved.address)
        self.address_edit.setText(saved.address or "")
        self.namespace_edit.setText(saved.namespace or "")
        self.cert_edit.setText(saved.tls_cert_path or "")
        self.private_edit.setText(saved.tls_private_path or "")
        self.key_edit.clear()
        self.show_enabled()

    def collect(self) -> dict[str, str] | None:
        """The file's "temporal" section; None for the embedded server."""
        if not self.external_radio.isChecked():
            return None
        temporal = {
            "address": self.address_edit.text().strip(),
            "namespace": self.namespace_edit.text().strip(),
            "tls_cert_path": self.cert_edit.text().strip(),
            "tls_private_path": self.private_edit.text().strip(),
        }
        return {k: v for k, v in temporal.items() if v}

    def problem(self, temporal: dict[str, Any] | None) -> str | None:
        if self.external_radio.isChecked() and not (temporal or {}).get("address"):
            return "An existing cluster needs an address (host:port)."
        address = str((temporal or {}).get("address", ""))
        if address and (":" not in address or not address.rsplit(":", 1)[1].isdigit()):
            return f"The address {address!r} is not host:port."
        return None

    def show_enabled(self) -> None:
        external = self.external_radio.isChecked()
        for widget in (
            self.address_edit,
            self.namespace_edit,
            self.cert_edit,
            self.private_edit,
            self.cert_button,
            self.private_button,
            self.key_edit,
        ):
            widget.setEnabled(external)

    def _on_external_radio_toggled(self, _checked: bool) -> None:
        self.show_enabled()

    @async_slot(overlap="skip", title="Choosing a file")
    async def _on_cert_button_clicked(self) -> None:
        await self._browse(self.cert_edit, "TLS client certificate")

    @async_slot(overlap="skip", title="Choosing a file")
    async def _on_private_button_clicked(self) -> None:
        await self._browse(self.private_edit, "TLS client key")

    async def _browse(self, edit: QLineEdit, title: str) -> None:
        dialog = QFileDialog(self, title, edit.text() or str(self._data_dir()))
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        if await run_dialog(dialog) and dialog.selectedFiles():
            edit.setText(dialog.selectedFiles()[0])


class ModelBox(QGroupBox):
    """The agent's model provider, model, endpoint and API key (the key to the keyring,
    for that endpoint only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Agent model (applies when the worker starts)", parent)
        self.provider_combo = choices(
            self, [(text, value) for value, text in PROVIDER_CHOICES], name="provider"
        )
        self.model_edit = line_edit(self, "gpt-4o-mini")
        self.base_url_edit = line_edit(self, "http://127.0.0.1:8000/v1")
        self.key_edit = secret_edit(self, "openaiKey")
        self.key_status = label(self, "openaiKeyStatus", wrap=True)
        form(
            self,
            ("Provider:", self.provider_combo),
            ("Model:", self.model_edit),
            ("Base URL:", self.base_url_edit),
            ("API key:", self.key_edit),
            ("", self.key_status),
        )
        self.provider_combo.currentIndexChanged.connect(self._on_provider_combo_changed)

    def fill(self, model: dict[str, Any]) -> None:
        """From the file's "model" section."""
        provider = model.get("provider", "offline")
        if provider == "openai" and model.get("base_url"):
            provider = "compatible"
        self.provider_combo.setCurrentIndex(max(0, self.provider_combo.findData(provider)))
        self.model_edit.setText(str(model.get("model") or ""))
        self.base_url_edit.setText(str(model.get("base_url") or ""))
        self.key_edit.clear()
        self.show_enabled()

    def collect(self, saved: dict[str, Any]) -> dict[str, Any]:
        """The file's "model" section: `saved`'s, with what the form says."""
        provider = self.provider_combo.currentData()
        model: dict[str, Any] = dict(saved)
        model["provider"] = "offline" if provider == "offline" else "openai"
        for key, text in (("model", self.model_edit.text()), ("base_url", "")):
            model.pop(key, None)
            if text.strip():
                model[key] = text.strip()
        if provider == "compatible":
            model["base_url"] = self.base_url_edit.text().strip()
        return model

    def problem(self, model: dict[str, Any]) -> str | None:
        if self.provider_combo.currentData() == "compatible" and not model.get("base_url"):
            return "An OpenAI-compatible endpoint needs its base URL."
        return None

    def show_enabled(self) -> None:
        provider = self.provider_combo.currentData()
        self.model_edit.setEnabled(provider != "offline")
        self.base_url_edit.setEnabled(provider == "compatible")
        self.key_edit.setEnabled(provider != "offline")

    def _on_provider_combo_changed(self, _index: int) -> None:
        self.show_enabled()
