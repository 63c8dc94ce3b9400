"""The main window: a tab per panel, and a status bar with server, deployment build,
the app's worker and Web UI; the pending count in the title, tab and tray; notifications.

Panels are plain widgets built with the session (`Panel(session=session, parent=self)`)
and added with `add_panel`; they take the Temporal client from the session's
`client_connected` themselves. A panel's `status_posted(str)` signal, when it has
one, reaches the status bar; its `stop()`, when it has one, runs on close.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import (
    QCloseEvent,
    QDesktopServices,
    QGuiApplication,
    QKeyEvent,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QTabWidget,
    QWidget,
)

from desktop import preferences, shortcuts, theme, window_state
from desktop.approvals_panel import ApprovalsPanel
from desktop.attention import (
    NO_NOTIFICATIONS,
    Attention,
    DBusNotifications,
    Notifier,
    badge_icon,
    make_tray,
)
from desktop.effects_panel import EffectsPanel
from desktop.liability_panel import LiabilityPanel
from desktop.member_detail import MemberDetail
from desktop.members_panel import MembersPanel
from desktop.panel import Panel, PostsStatus, Refreshable, ShowsMember, Stoppable
from desktop.releases_panel import ReleasesPanel
from desktop.settings_panel import SettingsPanel
from desktop.simulate_dialog import SimulateDialog
from desktop.status_strip import StatusStrip
from workflows.contract import member_workflow_id

if TYPE_CHECKING:
    from desktop.session import Session

log = logging.getLogger(__name__)

APP_TITLE = "Loyalty Desk"


class MainWindow(QMainWindow):
    """Loyalty Desk's window; usable while the server is still starting.

    Signals: none. Closing it quits the app, whose shutdown stops the rest.
    """

    def __init__(
        self,
        *,
        session: Session,
        open_url: Callable[[QUrl], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._open_url = open_url or QDesktopServices.openUrl
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(theme.app_icon())
        self.resize(1100, 680)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("panelTabs")
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.panels: dict[str, QWidget] = {}
        self.details: dict[str, MemberDetail] = {}
        self.simulate_dialog: SimulateDialog | None = None
        self.members = MembersPanel(parent=self)
        self.add_panel("Members", self.members)
        self.approvals = ApprovalsPanel(session=session, parent=self)
        self.add_panel("Approvals", self.approvals)
        self.releases = ReleasesPanel(session=session, parent=self)
        self.add_panel("Releases", self.releases)
        self.settings = SettingsPanel(session=session, parent=self)
        self.add_panel("Settings", self.settings)
        # after Settings: Ctrl+1..4 and the remembered tab keep meaning what they meant
        self.effects = EffectsPanel(session=session, parent=self)
        self.add_panel("Effects", self.effects)
        self.liability = LiabilityPanel(session=session, parent=self)
        self.add_panel("Liability", self.liability)
        # checked by mypy: every tab is a Panel; F5 and the Web UI find what they need
        tabs: tuple[Panel, ...] = (
            self.members,
            self.approvals,
            self.releases,
            self.settings,
            self.effects,
            self.liability,
        )
        refreshable: tuple[Refreshable, ...] = (
            self.members,
            self.approvals,
            self.releases,
            self.effects,
            self.liability,
        )
        with_member: tuple[ShowsMember, ...] = (self.members, self.approvals)
        del tabs, refreshable, with_member

        self.statusBar().setObjectName("statusBar")
        self.strip = StatusStrip(self, session)

        session.server_changed.connect(self._on_session_server_changed)
        session.worker_changed.connect(self._on_session_worker_changed)
        session.client_connected.connect(self._on_session_client_connected)
        self.strip.web_ui_button.clicked.connect(self._on_web_ui_button_clicked)
        self.releases.versions_loaded.connect(self.strip.show_versions)
        self.members.member_activated.connect(self._on_members_member_activated)
        self.members.simulate_requested.connect(self._on_members_simulate_requested)
        self.approvals.pending_changed.connect(self._on_approvals_pending_changed)

        # what needs the operator: the count wherever they look, and notifications
        self.tray = make_tray(self, self._on_tray_activated)
        dbus = DBusNotifications.find() if self.tray is None else None
        self.notifier = Notifier(window=self, tray=self.tray, dbus=dbus)
        if self.tray is None and dbus is None:
            self.show_message(NO_NOTIFICATIONS, 30_000)  # once, at start
        self.attention = Attention(notifier=self.notifier)
        self.attention.count_changed.connect(self._on_attention_count_changed)
        self.releases.wizard.finished.connect(self._on_rollback_finished)
        self.settings.preferences.changed.connect(self._on_preferences_changed)
        self.settings.relaunch_requested.connect(self._on_settings_relaunch_requested)
        self.relaunch_requested = False  # desktop/app.py starts the app again after closing

        # the operator's layout and filters, as they left them
        self.remembered_filters: dict[str, QWidget] = {
            "memberSearch": self.members.search,
            "approvalsAction": self.approvals.filters.action_filter,
            "approvalsTier": self.approvals.filters.tier_filter,
            "approvalsMinPoints": self.approvals.filters.min_points,
            "approvalsMaxPoints": self.approvals.filters.max_points,
            "approvalsMinAge": self.approvals.filters.min_age_hours,
        }
        window_state.restore(self, self.tabs, self.remembered_filters)

        # every action from the keyboard, and names for screen readers
        self.shortcuts_sheet: shortcuts.ShortcutsSheet | None = None
        self.keys = shortcuts.install(
            self,
            [
                ("F1", "Show the keyboard shortcuts", self.show_shortcuts),
                *(
                    (f"Ctrl+{n}", f"Show the {title} tab", self._tab_opener(title))
                    for n, title in enumerate(self.panels, start=1)
                ),
                ("Ctrl+F", "Search members", self._on_find_shortcut),
                ("F5", "Refresh the tab in view", self._on_refresh_shortcut),
                ("Ctrl+Shift+U", "Open the Temporal Web UI", self._on_web_ui_button_clicked),
                ("Ctrl+Shift+S", "Simulate traffic…", self.open_simulate),
                ("Ctrl+Q", "Quit", self.close),
            ],
        )
        self.keys.insert(1, shortcuts.Key("?", "Show the keyboard shortcuts", "Tables"))
        shortcuts.name_for_assistive_tech(self)
        self._question_mark = shortcuts.QuestionMark(self, self.show_shortcuts)

    @property
    def session(self) -> Session:
        return self._session

    def add_panel(self, title: str, panel: QWidget) -> None:
        """A tab for `panel`; its status messages go to the status bar."""
        self.panels[title] = panel
        self.tabs.addTab(panel, title)
        if isinstance(panel, PostsStatus):
            panel.status_posted.connect(self._on_panel_status_posted)

    def show_panel(self, title: str) -> QWidget:
        panel = self.panels[title]
        self.tabs.setCurrentWidget(panel)
        return panel

    def open_member(self, member_id: str) -> MemberDetail:
        """The member's detail window (one per member), raised and refreshing."""
        detail = self.details.get(member_id)
        if detail is None:
            detail = MemberDetail(
                member_id=member_id, session=self._session, open_url=self._open_url, parent=self
            )
            detail.destroyed.connect(lambda *_: self.details.pop(member_id, None))
            shortcuts.name_for_assistive_tech(detail)
            self.details[member_id] = detail
        window_state.fit_on_screen(detail, self)  # all of it, on the main window's screen
        detail.show()
        window_state.fit_on_screen(detail, self)  # again with the frame the platform added
        detail.raise_()
        detail.activateWindow()
        detail.start()
        return detail

    def open_simulate(self) -> SimulateDialog:
        """The "Simulate traffic" dialog (one, keeping its values between runs), shown."""
        dialog = self.simulate_dialog
        if dialog is None:
            dialog = SimulateDialog(session=self._session, parent=self)
            dialog.status_posted.connect(self._on_panel_status_posted)
            self.simulate_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def show_shortcuts(self) -> shortcuts.ShortcutsSheet:
        """The sheet of every key (F1, or ? where typing does not take it)."""
        if self.shortcuts_sheet is None:
            self.shortcuts_sheet = shortcuts.ShortcutsSheet(self.keys, self)
        self.shortcuts_sheet.show()
        self.shortcuts_sheet.raise_()
        self.shortcuts_sheet.activateWindow()
        return self.shortcuts_sheet

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # "?" reaches the window when no field took it as typing (tables: QuestionMark)
        if event.text() == "?":
            self.show_shortcuts()
            return
        super().keyPressEvent(event)

    def _tab_opener(self, title: str) -> Any:
        return lambda: self.show_panel(title)

    def _on_find_shortcut(self) -> None:
        self.show_panel("Members")
        self.members.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.members.search.selectAll()

    def _on_refresh_shortcut(self) -> None:
        panel = self.tabs.currentWidget()
        if isinstance(panel, Refreshable) and panel.refresh_button.isEnabled():
            panel.refresh_button.click()

    def stop(self) -> list[asyncio.Task[Any]]:
        """Every panel and detail window stops refreshing, simulated traffic stops;
        returns the loads to await."""
        waits: list[asyncio.Task[Any]] = self.strip.stop()
        widgets: list[QWidget] = [*self.panels.values(), *self.details.values()]
        if self.simulate_dialog is not None:
            widgets.append(self.simulate_dialog)
        for widget in widgets:
            if not isinstance(widget, Stoppable):
                continue
            stopping = widget.stop()
            if inspect.isawaitable(stopping):  # a panel whose stop is a coroutine
                try:
                    loop = asyncio.get_event_loop()
                except RuntimeError:
                    # no loop left (a window closed after its loop ended): nothing to await,
                    # and the other widgets must still stop
                    if inspect.iscoroutine(stopping):
                        stopping.close()
                    continue
                waits.append(asyncio.ensure_future(stopping, loop=loop))
            else:
                waits += stopping
        return waits

    def show_message(self, text: str, timeout_ms: int = 10_000) -> None:
        """A transient message in the status bar; "" clears it."""
        if text:
            self.statusBar().showMessage(text, timeout_ms)
        else:
            self.statusBar().clearMessage()

    def web_ui_url(self) -> QUrl | None:
        """The Web UI at the member selected in the current tab, or at the namespace's
        workflows."""
        base = self._session.ui_url
        if not base:
            return None
        namespace = quote(self._session.target.namespace, safe="")
        url = f"{base.rstrip('/')}/namespaces/{namespace}/workflows"
        # the member selected in the panel in view (members or approvals), if it has one
        panel = self.tabs.currentWidget()
        member = panel.selected_member_id() if isinstance(panel, ShowsMember) else ""
        if member:
            url += "/" + quote(member_workflow_id(member), safe="")
        return QUrl(url)

    def save_layout(self) -> None:
        """Remember geometry, splitters, columns, sort order, tab and filters."""
        window_state.save(self, self.tabs, self.remembered_filters)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        self.stop()
        if self.tray is not None:
            self.tray.hide()
        if self.notifier.dbus is not None:
            self.notifier.dbus.close()
            self.notifier.dbus = None
        for detail in list(self.details.values()):
            detail.close()
        super().closeEvent(event)

    # -- slots --------------------------------------------------------------------

    def _on_session_server_changed(self, state: str, address: str) -> None:
        self.strip.show_server(state, address)
        self._child_stopped(
            state, "server", "The Temporal server stopped", f"The server at {address}"
        )

    def _on_session_worker_changed(self, state: str, build: str) -> None:
        self.strip.show_worker(state, build)
        self._child_stopped(state, "worker", "The worker stopped", "The app's worker")

    def _child_stopped(self, state: str, which: str, title: str, subject: str) -> None:
        """Tell the person when the app's server or worker died (it restarts, or could not)."""
        if state not in ("restarting", "failed"):
            return
        child = self._session.server if which == "server" else self._session.worker
        error = (child.last_error if child is not None else None) or ""
        again = "restarting it" if state == "restarting" else "it could not be restarted"
        self.notifier.notify(
            which, title, f"{subject} stopped unexpectedly; {again}. {error}".strip()
        )

    def _on_rollback_finished(self, progress: Any) -> None:
        mismatches = len(progress.mismatches)
        verdict = "cancelled" if progress.state == "cancelled" else "finished"
        if mismatches:
            title = f"Rollback {verdict} with {mismatches:,} mismatches"
        else:
            title = f"Rollback {verdict}: verified"
        self.notifier.notify(
            "rollback",
            title,
            f"Rollback of {progress.bad_build}: {progress.verified_ok:,} members repaired "
            f"and verified, {mismatches:,} mismatches.",
        )

    def _on_preferences_changed(self, prefs: preferences.Prefs) -> None:
        self.notifier.set_prefs(prefs)
        app = QApplication.instance()
        if isinstance(app, QApplication) and prefs.theme != theme.choice():
            theme.apply(app, prefs.theme)

    def _on_settings_relaunch_requested(self) -> None:
        self.relaunch_requested = True
        self.close()

    def _on_tray_activated(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()
        if self.attention.count:
            self.show_panel("Approvals")

    def _on_attention_count_changed(self, count: int) -> None:
        waiting = f"{count:,} proposal{'s' if count != 1 else ''} waiting"
        self.setWindowTitle(f"{APP_TITLE} · {waiting}" if count else APP_TITLE)
        if self.tray is not None:
            self.tray.setToolTip(f"{APP_TITLE}: {waiting}" if count else APP_TITLE)
            self.tray.setIcon(badge_icon(count))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.notifier.banner.place()

    def _on_session_client_connected(self, client: Any) -> None:
        from desktop.members_loader import TemporalMembersSource

        self.members.set_source(TemporalMembersSource(client=client))
        self.strip.start()

    def _on_web_ui_button_clicked(self) -> None:
        url = self.web_ui_url()
        if url is None:
            self.show_message("This server has no Web UI the app knows of")
            return
        log.info("opening %s", url.toString())
        if self._open_url(url) is False:
            # the whole address does not fit in the status bar: it goes to the clipboard
            QGuiApplication.clipboard().setText(url.toString())
            self.show_message("No web browser found: the Web UI's address is on the clipboard")

    def _on_panel_status_posted(self, text: str) -> None:
        self.show_message(text)

    def _on_members_member_activated(self, member_id: str) -> None:
        self.open_member(member_id)

    def _on_members_simulate_requested(self) -> None:
        self.open_simulate()

    def _on_approvals_pending_changed(self, count: int) -> None:
        index = self.tabs.indexOf(self.approvals)
        self.tabs.setTabText(index, f"Approvals ({count:,})" if count else "Approvals")
        self.attention.update(self.approvals.model.rows)
