"""The operator's desktop preferences (theme, notifications), kept in QSettings.

Unlike settings.json (the deployment's settings, runtime/), these belong to the person
at this desktop and take effect as soon as they change: `Preferences.changed` fires.
Tests point QSettings at a temporary folder (tests/desktop/conftest.py), so nothing
leaks between tests or into the operator's own settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QSpinBox, QWidget

from desktop import theme
from desktop.layouts import choices

DEFAULT_THRESHOLD_MIN = 30
DEFAULT_RATE_LIMIT_MIN = 10


@dataclass(frozen=True)
class Prefs:
    theme: str = "system"
    notifications: bool = True
    # a notification when a proposal has waited longer than this
    pending_threshold_min: int = DEFAULT_THRESHOLD_MIN
    # at most one notification of a kind in this many minutes
    rate_limit_min: int = DEFAULT_RATE_LIMIT_MIN


def settings() -> QSettings:
    """The app's QSettings (organisation and application names set by theme.apply)."""
    return QSettings("loyalty-desk", "Loyalty Desk")


def read() -> Prefs:
    store = settings()
    default = Prefs()
    choice = str(store.value("appearance/theme", default.theme))
    return Prefs(
        theme=choice if choice in theme.CHOICES else default.theme,
        notifications=_bool(store.value("notify/enabled", default.notifications)),
        pending_threshold_min=_int(
            store.value("notify/pending_threshold_min"), default.pending_threshold_min
        ),
        rate_limit_min=_int(store.value("notify/rate_limit_min"), default.rate_limit_min),
    )


def write(prefs: Prefs) -> None:
    store = settings()
    store.setValue("appearance/theme", prefs.theme)
    store.setValue("notify/enabled", prefs.notifications)
    store.setValue("notify/pending_threshold_min", prefs.pending_threshold_min)
    store.setValue("notify/rate_limit_min", prefs.rate_limit_min)
    store.sync()


def _bool(value: object) -> bool:
    if isinstance(value, str):  # the INI backend hands back "true"/"false"
        return value.lower() == "true"
    return bool(value)


def _int(value: object, default: int) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return default


class PreferencesBox(QGroupBox):
    """Theme and notification choices; each change is stored and applied at once.

    Signals:
        changed(prefs): after a change was stored.
    """

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("This desktop (applies at once)", parent)
        self.setObjectName("preferences")
        self.theme_combo = choices(
            self,
            [("Follow the system", "system"), ("Light", "light"), ("Dark", "dark")],
            name="themeChoice",
        )
        self.theme_combo.setAccessibleName("Theme")
        self.notify_check = QCheckBox("Desktop notifications", self)
        self.notify_check.setObjectName("notificationsEnabled")
        self.threshold_spin = QSpinBox(self)
        self.threshold_spin.setObjectName("pendingThreshold")
        self.threshold_spin.setAccessibleName("Notify when a proposal waited longer than")
        self.threshold_spin.setRange(0, 7 * 24 * 60)
        self.threshold_spin.setSuffix(" min")
        self.threshold_spin.setGroupSeparatorShown(True)
        self.rate_spin = QSpinBox(self)
        self.rate_spin.setObjectName("notifyRateLimit")
        self.rate_spin.setAccessibleName("At most one notification of a kind every")
        self.rate_spin.setRange(0, 24 * 60)
        self.rate_spin.setSuffix(" min")
        form = QFormLayout(self)
        form.addRow("Theme:", self.theme_combo)
        form.addRow("", self.notify_check)
        form.addRow("Notify when a proposal waited over:", self.threshold_spin)
        form.addRow("At most one of a kind every:", self.rate_spin)
        self.show_prefs(read())
        self.theme_combo.currentIndexChanged.connect(self._on_changed)
        self.notify_check.toggled.connect(self._on_changed)
        self.threshold_spin.valueChanged.connect(self._on_changed)
        self.rate_spin.valueChanged.connect(self._on_changed)

    def show_prefs(self, prefs: Prefs) -> None:
        for widget in (self.theme_combo, self.notify_check, self.threshold_spin, self.rate_spin):
            widget.blockSignals(True)
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(prefs.theme)))
        self.notify_check.setChecked(prefs.notifications)
        self.threshold_spin.setValue(prefs.pending_threshold_min)
        self.rate_spin.setValue(prefs.rate_limit_min)
        for widget in (self.theme_combo, self.notify_check, self.threshold_spin, self.rate_spin):
            widget.blockSignals(False)
        self._show_enabled()

    def prefs(self) -> Prefs:
        return Prefs(
            theme=str(self.theme_combo.currentData()),
            notifications=self.notify_check.isChecked(),
            pending_threshold_min=self.threshold_spin.value(),
            rate_limit_min=self.rate_spin.value(),
        )

    def _show_enabled(self) -> None:
        on = self.notify_check.isChecked()
        self.threshold_spin.setEnabled(on)
        self.rate_spin.setEnabled(on)

    def _on_changed(self, *_: object) -> None:
        prefs = self.prefs()
        write(prefs)
        self._show_enabled()
        self.changed.emit(prefs)
