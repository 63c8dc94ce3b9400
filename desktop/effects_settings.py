"""Settings: where approved effects go (runtime/effects.py), one section of the panel.

Per kind a webhook (and, for messages, an email address), the SMTP server, and the two
secrets (the webhook signing secret, the SMTP password), which go to the OS keyring
only. Destinations hold for every worker of the deployment and are audited; applying
them delivers the effects that waited for one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop import preload
from desktop.asyncutil import async_slot
from desktop.layouts import line_edit
from desktop.settings_keyring import secret_edit

if TYPE_CHECKING:
    from desktop.session import Session

KIND_LABELS = (
    ("message", "Messages to members"),
    ("fraud_case", "Fraud cases"),
    ("tier_change", "Tier-change requests"),
)


class EffectsSettingsBox(QGroupBox):
    status_posted = Signal(str)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Effects: where approved actions go (one set for every worker)", parent)
        self.setObjectName("effectsSettings")
        self._session = session
        self.loaded: Any = None  # the EffectsConfig as last read
        self.webhooks: dict[str, QLineEdit] = {}
        form = QFormLayout(self)
        self.status = QLabel("Read from the deployment when connected.", self)
        self.status.setObjectName("effectsSettingsStatus")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        for kind, label in KIND_LABELS:
            edit = line_edit(
                self, "https://… webhook (empty: they wait undelivered)", name=f"webhook_{kind}"
            )
            self.webhooks[kind] = edit
            form.addRow(f"{label}, webhook:", edit)
        self.email = line_edit(
            self, "{member_id}@members.example (empty: no email)", name="effectsEmail"
        )
        form.addRow("Messages, email to:", self.email)
        self.smtp_host = QLineEdit(self)
        self.smtp_host.setObjectName("smtpHost")
        self.smtp_port = QSpinBox(self)
        self.smtp_port.setRange(1, 65535)
        self.smtp_port.setValue(587)
        self.smtp_sender = line_edit(self, "From address")
        self.smtp_username = QLineEdit(self)
        self.smtp_ca = line_edit(self, "CA file (PEM) to trust, if not the system's")
        self.smtp_starttls = QCheckBox("STARTTLS (off only for a server on this machine)", self)
        self.smtp_starttls.setChecked(True)
        form.addRow("SMTP host:", self.smtp_host)
        form.addRow("SMTP port:", self.smtp_port)
        form.addRow("SMTP sender:", self.smtp_sender)
        form.addRow("SMTP login:", self.smtp_username)
        form.addRow("SMTP CA file:", self.smtp_ca)
        form.addRow("", self.smtp_starttls)
        self.webhook_secret = secret_edit(self, "webhookSecret", "a signing secret")
        self.smtp_password = secret_edit(self, "smtpPassword", "an SMTP password")
        form.addRow("Webhook secret:", self.webhook_secret)
        form.addRow("SMTP password:", self.smtp_password)
        self.reason = line_edit(
            self, "why they change (recorded in the audit log)", name="effectsReason"
        )
        form.addRow("Why:", self.reason)
        self.apply_button = QPushButton("Apply effect destinations", self)
        self.apply_button.setObjectName("effectsApply")
        form.addRow("", self.apply_button)
        self.apply_button.clicked.connect(self._on_apply_button_clicked)
        session.client_connected.connect(self._on_session_client_connected)

    def _smtp(self) -> dict[str, Any]:
        if not self.smtp_host.text().strip():
            return {}
        smtp: dict[str, Any] = {
            "host": self.smtp_host.text().strip(),
            "port": self.smtp_port.value(),
            "sender": self.smtp_sender.text().strip(),
            "starttls": self.smtp_starttls.isChecked(),
        }
        if self.smtp_username.text().strip():
            smtp["username"] = self.smtp_username.text().strip()
        if self.smtp_ca.text().strip():
            smtp["ca_file"] = self.smtp_ca.text().strip()
        return smtp

    def _wanted(self) -> dict[str, list[dict[str, Any]]]:
        from runtime.effects import destinations_of

        wanted = {}
        for kind, edit in self.webhooks.items():
            url = edit.text().strip()
            emails = (
                [self.email.text().strip()]
                if kind == "message" and self.email.text().strip()
                else []
            )
            wanted[kind] = destinations_of([url] if url else [], emails)
        return wanted

    def show_config(self, config: Any) -> None:
        self.loaded = config
        for kind, edit in self.webhooks.items():
            items = config.destinations.get(kind) or []
            edit.setText(next((i["url"] for i in items if i.get("type") == "webhook"), ""))
        items = config.destinations.get("message") or []
        self.email.setText(next((i["to"] for i in items if i.get("type") == "email"), ""))
        smtp = config.smtp or {}
        self.smtp_host.setText(str(smtp.get("host", "")))
        self.smtp_port.setValue(int(smtp.get("port", 587)))
        self.smtp_sender.setText(str(smtp.get("sender", "")))
        self.smtp_username.setText(str(smtp.get("username", "")))
        self.smtp_ca.setText(str(smtp.get("ca_file", "")))
        self.smtp_starttls.setChecked(bool(smtp.get("starttls", True)))
        last = config.changes[-1] if config.changes else None
        self.status.setText(
            f"Version {config.version}"
            + (f", last changed by {last['actor']}: {last['reason']}" if last else "")
            + ". Kinds with no destination wait undelivered (never dropped)."
        )

    @async_slot(overlap="restart", errors="status", title="Reading effect destinations")
    async def load(self) -> None:
        await preload.ready("runtime.effects")
        from runtime import effects

        client = self._session.client
        if client is not None:
            self.show_config(await effects.config(client, self._session.target))

    async def apply(self) -> str:
        """Store the secrets typed in, then change what differs; the outcome in one line."""
        from runtime import effects, secrets

        client = self._session.client
        if client is None:
            raise effects.EffectsError("not connected to Temporal yet")
        stored = []
        for name, edit in (("webhook", self.webhook_secret), ("smtp", self.smtp_password)):
            if edit.text().strip():
                await asyncio.to_thread(secrets.set_secret, name, edit.text())
                edit.clear()
                stored.append(name)
        loaded = self.loaded or effects.EffectsConfig()
        wanted = self._wanted()
        changed = {
            kind: items
            for kind, items in wanted.items()
            if items != (loaded.destinations.get(kind) or [])
        }
        smtp = self._smtp()
        smtp_changed = smtp != (loaded.smtp or {}) and bool(smtp)
        if not changed and not smtp_changed:
            text = "Effects: " + (
                f"stored {', '.join(stored)} in the keyring" if stored else "nothing changed"
            )
        else:
            result = await effects.change_config(
                client,
                self._session.target,
                destinations=changed,
                smtp=smtp if smtp_changed else None,
                reason=self.reason.text(),
            )
            self.show_config(result.config)
            self.reason.clear()
            text = f"Effects: destinations saved (version {result.config.version})"
            if result.woken:
                text += f"; {result.woken} waiting effect(s) try again"
        self.status_posted.emit(text)
        return text

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._session.client is not None and self.loaded is None:
            self.load()

    def _on_session_client_connected(self, _client: object) -> None:
        if self.isVisible():
            self.load()

    @async_slot(overlap="skip", title="Effect destinations not saved")
    async def _on_apply_button_clicked(self) -> None:
        try:
            text = await self.apply()
        except (ValueError, RuntimeError) as error:  # EffectsError, SecretsError: one line
            text = str(error)
        self.status.setText(text)


__all__ = ["EffectsSettingsBox"]
