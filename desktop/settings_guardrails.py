"""The Settings panel's guardrails section: the deployment's agent guardrails (one set
for every worker, kept on the server by workflows/guardrails.py), read when connected,
changed with a reason that goes into the audit log."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QWidget,
)

from desktop.layouts import line_edit
from desktop.units import exact_duration_text, parse_duration

# the guardrails people tune here; the rest keep their defaults unless changed with
# `loyalty-desk guardrails set` (never in settings.json, whose "agent" section is ignored)
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


class GuardrailsBox(QGroupBox):
    """A field per tuned guardrail, the reason for a change, and where the values
    came from; disabled until the deployment's values are read."""

    def __init__(self, parent: QWidget | None = None) -> None:
        from workflows.agent_policy import LIMITS, AgentPolicy

        super().__init__("Agent guardrails (per member; one set for every worker)", parent)
        self.widgets: dict[str, QSpinBox | QCheckBox] = {}
        # the deployment's guardrails as last read from the server (None: not read yet)
        self.read: dict[str, Any] | None = None
        self.reason = line_edit(
            self, "why they change (recorded in the audit log)", name="policyReason"
        )
        self.status = QLabel(self)
        self.status.setObjectName("policyStatus")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow(self.status)
        defaults = AgentPolicy().as_dict()
        for name in POLICY_FIELDS:
            widget: QSpinBox | QCheckBox
            if isinstance(defaults[name], bool):
                widget = QCheckBox(self)
            elif name.endswith("_seconds"):  # shown in days, hours...; still seconds
                widget = DurationSpinBox(self)
                widget.setRange(0, LIMITS[name])
            else:
                widget = QSpinBox(self)
                widget.setRange(0, LIMITS[name])
                widget.setGroupSeparatorShown(True)
            widget.setObjectName(f"policy_{name}")
            default = defaults[name]
            shown = widget.textFromValue(default) if isinstance(widget, QSpinBox) else default
            hint = " (type e.g. 2 days 6 h, 90 min, 45 s)" if name.endswith("_seconds") else ""
            widget.setToolTip(f"default {shown}{hint}")
            self.widgets[name] = widget
            label = name.removesuffix("_seconds").replace("_", " ").capitalize()
            form.addRow(label + ":", widget)
        form.addRow("Why:", self.reason)
        self.show_values(None)

    def show_values(self, values: dict[str, Any] | None, note: str = "") -> None:
        """Fill the fields from the deployment's values; without them (not connected
        yet) the fields wait, disabled."""
        self.read = values
        for name, widget in self.widgets.items():
            widget.setEnabled(values is not None)
            if values is None:
                continue
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(values[name]))
            else:
                widget.setValue(int(values[name]))
        self.reason.setEnabled(values is not None)
        self.status.setText(
            note
            or (
                "Read from the deployment when connected: they hold for every worker, "
                "whatever its own settings file says."
            )
        )

    async def load(self, client: Any, deployment: str) -> None:
        """Read the deployment's guardrails from the server into the fields."""
        from runtime import guardrails

        if client is None:
            self.show_values(None)
            return
        current = await guardrails.current(client, deployment)
        last = current.changes[-1] if current.changes else None
        note = f"The deployment's guardrails, version {current.version}"
        note += f", last changed by {last['actor']}: {last['reason']}" if last else " (defaults)"
        self.show_values(current.policy().as_dict(), note + ". They apply to every worker at once.")

    def changes(self) -> tuple[dict[str, Any], list[str]]:
        """(values to set, names back to their default) against what was read."""
        from workflows.agent_policy import AgentPolicy

        if self.read is None:
            return {}, []
        defaults = AgentPolicy().as_dict()
        values: dict[str, Any] = {}
        reset: list[str] = []
        for name, widget in self.widgets.items():
            value = widget.isChecked() if isinstance(widget, QCheckBox) else widget.value()
            if value == self.read[name]:
                continue
            if value == defaults[name]:
                reset.append(name)
            else:
                values[name] = value
        return values, reset
