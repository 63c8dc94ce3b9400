"""Telling the operator when the app needs them: the pending count, and notifications.

The count of pending proposals shows in the tray icon's tooltip and badge (where the
platform has a tray), the window's title and the Approvals tab, whichever tab is in
view. Notifications (proposals waiting past the threshold, a finished rollback, the
server or the worker stopping unexpectedly) go to the tray's balloon where there is
a tray, else to the desktop's notification service (org.freedesktop.Notifications on
the session bus), else to a notice in the window's corner; each kind at most once per
rate limit, none when switched off (desktop/preferences.py). `Notifier.history` keeps
every notification shown, and what was held back and why is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QIcon, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QMenu,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from desktop import preferences, theme
from desktop.approvals_model import created_at
from desktop.units import duration_text

log = logging.getLogger(__name__)

NOTICE_SHOWN_MS = 8000
APP_NAME = "Loyalty Desk"
NO_NOTIFICATIONS = (
    "No system tray and no desktop notification service: notifications show inside this window"
)
KINDS = ("pending", "rollback", "server", "worker")


@dataclass(frozen=True)
class Notification:
    kind: str
    title: str
    text: str
    at: float = field(default_factory=time.monotonic)


class NoticeBanner(QFrame):
    """A notification inside the window (top right) for platforms without a tray."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setAccessibleName("Notification")
        self.title = QLabel(self)
        self.title.setObjectName("noticeTitle")
        self.text = QLabel(self)
        self.text.setObjectName("noticeText")
        self.text.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        self.setFixedWidth(340)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self.hide)
        self.hide()

    def show_notice(self, title: str, text: str, timeout_ms: int = NOTICE_SHOWN_MS) -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.adjustSize()
        self.place()
        self.show()
        self.raise_()
        self._hide_timer.start(timeout_ms)

    def place(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.move(QPoint(parent.width() - self.width() - 16, 48))

    def mousePressEvent(self, event: object) -> None:  # a click dismisses it
        self.hide()


class DBusNotifications:
    """The desktop's notification service on the D-Bus session bus, for desktops with
    no tray (GNOME's default among them).

    Through jeepney (keyring's own D-Bus library here): PySide6's QtDBus cannot send
    an unsigned integer, and `Notify` takes one (replaces_id); GDBus-based services
    refuse the call with a signed one. A notification is sent without waiting for the
    service's answer, so a slow service never holds up the window.
    """

    SERVICE = "org.freedesktop.Notifications"
    PATH = "/org/freedesktop/Notifications"

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @classmethod
    def find(cls) -> DBusNotifications | None:
        """The service, when a session bus runs and something owns the name."""
        try:
            from jeepney.bus_messages import message_bus
            from jeepney.io.blocking import open_dbus_connection

            connection = open_dbus_connection(bus="SESSION")
        except Exception as error:  # no jeepney, no session bus address, bus refused
            log.info("no D-Bus session bus for notifications: %s", error)
            return None
        try:
            owned = connection.send_and_get_reply(
                message_bus.NameHasOwner(cls.SERVICE), timeout=2
            ).body[0]
        except Exception as error:
            log.info("the D-Bus session bus did not answer: %s", error)
            owned = False
        if not owned:
            connection.close()
            return None
        return cls(connection)

    def notify(self, title: str, text: str, timeout_ms: int = NOTICE_SHOWN_MS) -> bool:
        from jeepney import DBusAddress, new_method_call

        address = DBusAddress(self.PATH, bus_name=self.SERVICE, interface=self.SERVICE)
        call = new_method_call(
            address,
            "Notify",
            "susssasa{sv}i",
            (APP_NAME, 0, "io.github.loyalty_desk.LoyaltyDesk", title, text, [], {}, timeout_ms),
        )
        try:
            self._connection.send(call)
        except OSError as error:  # the bus went away
            log.warning("desktop notification not sent: %s", error)
            return False
        return True

    def close(self) -> None:
        self._connection.close()


class Notifier(QObject):
    """Shows notifications through the tray, or a notice in `window`; rate-limited.

    Signals:
        shown(kind, title, text): a notification reached the operator.
    """

    shown = Signal(str, str, str)

    def __init__(
        self,
        *,
        window: QWidget,
        tray: QSystemTrayIcon | None,
        dbus: DBusNotifications | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(window)
        self.tray = tray
        self.dbus = dbus  # used where there is no tray
        self.banner = NoticeBanner(window)
        self.clock = clock
        self.prefs = preferences.read()
        self.history: list[Notification] = []
        self._last: dict[str, float] = {}

    def set_prefs(self, prefs: preferences.Prefs) -> None:
        self.prefs = prefs

    def notify(self, kind: str, title: str, text: str) -> bool:
        """Show it unless switched off or one of this kind was shown too recently."""
        if kind not in KINDS:
            raise ValueError(f"no notification kind {kind!r}")
        if not self.prefs.notifications:
            log.info("notification off, not shown: %s: %s", title, text)
            return False
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.prefs.rate_limit_min * 60:
            log.info("notification held back (rate limit): %s: %s", title, text)
            return False
        self._last[kind] = now
        self.history.append(Notification(kind, title, text, now))
        log.info("notification: %s: %s", title, text)
        if self.tray is not None and self.tray.isVisible() and self.tray.supportsMessages():
            self.tray.showMessage(title, text, theme.app_icon(), NOTICE_SHOWN_MS)
        elif self.dbus is None or not self.dbus.notify(title, text):
            self.banner.show_notice(title, text)
        self.shown.emit(kind, title, text)
        return True


class Attention(QObject):
    """Follows the pending proposals: the count everywhere, a notification when some
    have waited past the threshold (each proposal counted once).

    Signals:
        count_changed(count)
    """

    count_changed = Signal(int)

    def __init__(
        self,
        *,
        notifier: Notifier,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(notifier)
        self.notifier = notifier
        self.now = now
        self.count: int | None = None
        self._overdue_told: set[str] = set()

    def update(self, proposals: Iterable[dict[str, object]]) -> None:
        rows = list(proposals)
        if len(rows) != self.count:
            self.count = len(rows)
            self.count_changed.emit(self.count)
        threshold_s = self.notifier.prefs.pending_threshold_min * 60
        now = self.now()
        waiting: dict[str, float] = {}
        for row in rows:
            created = created_at(row)
            if created is not None:
                waiting[str(row.get("id"))] = (now - created).total_seconds()
        overdue = {key for key, age in waiting.items() if age >= threshold_s}
        # decided ones leave the set, so a later one with the same id would count again
        self._overdue_told &= overdue
        new = overdue - self._overdue_told
        if not new:
            return
        oldest = max(waiting[key] for key in overdue)
        many = len(overdue)
        text = (
            f"{many:,} proposal{'s' if many != 1 else ''} waited longer than "
            f"{duration_text(threshold_s)}; the oldest {duration_text(oldest)}."
        )
        if self.notifier.notify("pending", "Proposals are waiting for you", text):
            self._overdue_told |= overdue


def badge_icon(count: int, size: int = 64) -> QIcon:
    """The app icon with the count in a corner badge (none for 0)."""
    base = theme.app_icon()
    if count <= 0:
        return base
    pixmap = base.pixmap(size, size)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    text = str(count) if count < 100 else "99+"
    badge = QRect(size // 3, size // 3 + 4, size * 2 // 3, size * 2 // 3 - 4)
    painter.setBrush(theme.color("drill_background"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(badge.height() * (0.7 if len(text) < 3 else 0.5)))
    painter.setFont(font)
    painter.setPen(theme.color("drill_text"))
    painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return QIcon(pixmap)


def make_tray(window: QWidget, on_activated: Callable[[], None]) -> QSystemTrayIcon | None:
    """The tray icon with its menu, or None where the platform has no tray."""
    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    tray = QSystemTrayIcon(theme.app_icon(), window)
    tray.setToolTip("Loyalty Desk")
    menu = QMenu(window)
    menu.addAction("Show Loyalty Desk", on_activated)
    menu.addSeparator()
    menu.addAction("Quit", window.close)
    tray.setContextMenu(menu)
    tray.activated.connect(lambda _reason: on_activated())
    tray.show()
    return tray
