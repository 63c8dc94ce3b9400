"""The approval queue's filter bar: action, tier, points range, age. Zero or "Any" means
no limit; `changed` fires on every edit and `queue_filter()` says what is asked."""

from __future__ import annotations

from datetime import timedelta

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from desktop.approvals_model import QueueFilter
from workflows.agent_policy import ACTIONS
from workflows.rules import TIER_NAMES

ANY = "Any"


class QueueFilters(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.action_filter = QComboBox(self)
        self.action_filter.addItems([ANY, *ACTIONS])
        self.tier_filter = QComboBox(self)
        self.tier_filter.addItems([ANY, *TIER_NAMES])
        self.min_points = _optional_spin(self, 1_000_000)
        self.max_points = _optional_spin(self, 1_000_000)
        self.min_age_hours = _optional_spin(self, 24 * 30)
        self.min_age_hours.setSuffix(" h")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for label, widget in (
            ("Action", self.action_filter),
            ("Tier", self.tier_filter),
            ("Points from", self.min_points),
            ("to", self.max_points),
            ("Older than", self.min_age_hours),
        ):
            row.addWidget(QLabel(label, self))
            row.addWidget(widget)
        for combo in (self.action_filter, self.tier_filter):
            combo.currentIndexChanged.connect(self._on_edited)
        for spin in (self.min_points, self.max_points, self.min_age_hours):
            spin.valueChanged.connect(self._on_edited)

    def queue_filter(self) -> QueueFilter:
        hours = self.min_age_hours.value()
        return QueueFilter(
            action=_choice(self.action_filter),
            tier=_choice(self.tier_filter),
            min_points=self.min_points.value() or None,
            max_points=self.max_points.value() or None,
            min_age=timedelta(hours=hours) if hours else None,
        )

    def _on_edited(self, *_: object) -> None:
        self.changed.emit()


def _optional_spin(parent: QWidget, maximum: int) -> QSpinBox:
    """A whole-number filter whose zero means "any"."""
    spin = QSpinBox(parent)
    spin.setRange(0, maximum)
    spin.setSpecialValueText(ANY.lower())
    spin.setGroupSeparatorShown(True)
    return spin


def _choice(combo: QComboBox) -> str | None:
    text = combo.currentText()
    return None if text == ANY else text
