"""Releases & rollback: deployment versions, workers per build, current / ramp, the
rollback wizard, the replay check and the audit log.

Workers started here are child processes of the app (desktop/worker_process.py), one
per build, stopped with it; every release action needs a reason and is audited.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QWidget,
)

from desktop import preload
from desktop.asyncutil import async_slot, cancel_slot_tasks
from desktop.audit_page import AuditPage
from desktop.layouts import choices, hbox, label, line_edit, split, tabbed, ticker, vbox
from desktop.release_models import RecordsModel, version_columns
from desktop.replay_page import ReplayPage
from desktop.rollback_wizard import RollbackWizard
from desktop.tables import records_table
from desktop.units import duration_text
from runtime.rollback_status import RollbackState
from workflows.drill import DRILLS

if TYPE_CHECKING:
    from desktop.session import Session
    from desktop.worker_process import WorkerProcess

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 5_000
# imported in a thread once connected: on the GUI thread they would freeze the window
# for about a second at the first preview or replay check
HEAVY_MODULES = ("runtime.releases", "recovery.repair", "runtime.replay_check")
NO_DRILL = "none: a real build"
VISIBLE_VERSIONS = 3
NO_VERSIONS = "No worker has polled this deployment yet."
# how long a started worker's version may take to show in the deployment's description
VERSION_SHOWS_TIMEOUT_S = 15.0


class ReleasesPanel(QWidget):
    """Deployment versions and what runs on each; releases, rollback, replay check, audit.

    Signals:
        status_posted(text): a one-line outcome for the window's status bar.
        versions_loaded(rows): the versions table was refreshed.
    """

    status_posted = Signal(str)
    versions_loaded = Signal(list)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.workers: dict[str, WorkerProcess] = {}  # build id -> worker started here

        self.versions_model = RecordsModel(columns=version_columns(), parent=self)
        self.versions_table = records_table(self, self.versions_model, "versionsTable")
        versions_header = self.versions_table.horizontalHeader()
        versions_header.setStretchLastSection(False)
        versions_header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # a drill rehearsal has three builds (the good, the drill, the fix): all of them
        # stay in sight, so "Make selected current" acts on a row the user sees
        self.versions_table.setMinimumHeight(
            versions_header.sizeHint().height()
            + VISIBLE_VERSIONS * self.versions_table.verticalHeader().defaultSectionSize()
            + 2 * self.versions_table.frameWidth()
        )
        self.deployment_label = QLabel(f"Deployment {session.target.deployment}", self)
        self.refresh_button = QPushButton("Refresh", self)
        self.message = label(self, "releasesMessage", wrap=True)
        header = hbox(self.deployment_label, 1, self.refresh_button)

        self.reason_edit = line_edit(
            self, "why (required for every release action; audited)", name="releaseReason"
        )
        self.current_button = QPushButton("Make selected current", self)
        self.ramp_spin = QDoubleSpinBox(self)
        self.ramp_spin.setRange(1, 100)
        self.ramp_spin.setValue(10)
        self.ramp_spin.setSuffix(" %")
        self.ramp_button = QPushButton("Ramp selected", self)
        self.build_edit = line_edit(self, "build id, e.g. 1.1", name="newBuild")
        self.drill_combo = choices(
            self,
            [(NO_DRILL, None), *((f"DRILL: {bug}", bug) for bug in DRILLS)],
            name="drillChoice",
        )
        self.start_button = QPushButton("Start worker", self)
        self.workers_label = label(self, "panelWorkers", "Workers started here: none", wrap=True)

        actions = QGroupBox("Release", self)
        vbox(
            actions,
            hbox(QLabel("Reason:", actions), (self.reason_edit, 1)),
            hbox(self.current_button, self.ramp_spin, self.ramp_button, 1),
            hbox(
                QLabel("New worker:", actions),
                self.build_edit,
                self.drill_combo,
                self.start_button,
                1,
            ),
            self.workers_label,
        )

        self.wizard = RollbackWizard(session=session, parent=self)
        self.tabs = tabbed(self, (self.wizard, "Rollback"), name="releasesTabs")
        self.replay_page = ReplayPage(session=session, parent=self)
        # the page's parts, where the window's tests and tools have always found them
        page = self.replay_page
        self.candidate_edit, self.verdict_label = page.candidate_edit, page.verdict_label
        self.replay_button, self.replay_cancel_button = (
            page.replay_button,
            page.replay_cancel_button,
        )
        self.replay_model = page.replay_model
        self.run_replay_check, self.cancel_replay_check = (
            page.run_replay_check,
            page.cancel_replay_check,
        )
        self._on_replay_button_clicked = page._on_replay_button_clicked
        self.tabs.addTab(self.replay_page, "Replay check")
        self.tabs.addTab(self._audit_page(), "Audit log")

        # versions and release actions above, the wizard below: a splitter, so either can
        # have the room (the preview table wants it on a small screen)
        top = QWidget(self)
        vbox(top, header, (self.versions_table, 1), actions, self.message).setContentsMargins(
            0, 0, 0, 0
        )
        self.splitter = split(
            self, Qt.Orientation.Vertical, (top, 1), (self.tabs, 3), name="releasesSplitter"
        )
        self.splitter.setChildrenCollapsible(False)
        vbox(self, self.splitter)

        self._timer = ticker(self, REFRESH_INTERVAL_MS, self._on_timer_timeout)

        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)
        self.current_button.clicked.connect(self._on_current_button_clicked)
        self.ramp_button.clicked.connect(self._on_ramp_button_clicked)
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.replay_page.refused.connect(self._say)
        self.audit_button.clicked.connect(self._on_audit_button_clicked)
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.wizard.finished.connect(self._on_wizard_finished)
        session.client_connected.connect(self._on_session_client_connected)
        if session.client is not None:
            self._on_session_client_connected(session.client)

    def _audit_page(self) -> QWidget:
        self.audit_page = AuditPage(parent=self)
        self.audit_button = self.audit_page.refresh_button
        self.audit_model = self.audit_page.model
        return self.audit_page

    # -- operations ---------------------------------------------------------------

    def selected_build(self) -> str | None:
        rows = self.versions_table.selectionModel().selectedRows()
        if not rows:
            return None
        return str(self.versions_model.record(rows[0].row())["build_id"])

    def select_build(self, build: str) -> bool:
        for row, record in enumerate(self.versions_model.records):
            if record["build_id"] == build:
                self.versions_table.selectRow(row)
                return True
        return False

    async def refresh(self) -> None:
        """Versions with their members, and the audit log when it is in view."""
        from runtime.releases import list_versions

        client = self._session.connected_client()
        selected = self.selected_build()
        versions = await list_versions(client, self._session.target.deployment)
        # newest build first, in a stable order: the server lists them in an order of its
        # own that changes between refreshes, which moved rows under the user's cursor
        rows = sorted(
            (v.as_json() for v in versions or []),
            key=lambda r: _natural(str(r["build_id"])),
            reverse=True,
        )
        self.versions_model.set_records(rows)
        if selected:
            self.select_build(selected)
        if versions is None:
            self._say(NO_VERSIONS)
        elif self.message.text() == NO_VERSIONS:
            self._say("")  # said before the first worker polled: no longer true
        self.wizard.set_versions(rows)
        self.versions_loaded.emit(rows)
        if self.tabs.currentWidget() is self.audit_page:
            # only when shown: reading the whole record can wait on the audit's worker
            await self.load_audit()

    async def load_audit(self) -> None:
        await self.audit_page.load(self._session.connected_client(), self._session.target.data_dir)

    async def start_worker(self, build: str, drill: str | None, reason: str) -> WorkerProcess:
        """A worker for `build` (a drill build when `drill` names a bug), beside the others."""
        from desktop.worker_process import WorkerProcess
        from runtime.workers import start_worker, worker_command

        session = self._session
        if session.address is None:
            raise RuntimeError("the Temporal server is not up yet")
        command = worker_command(session.target, session.address, build, drill, reason)
        full = command.full_build_id or ""
        if full in self.workers and self.workers[full].state in ("starting", "running"):
            raise ValueError(f"a worker for {full} already runs from this window")
        worker = WorkerProcess(command)
        self.workers[full] = worker
        worker.on_state_changed = lambda _state: self._show_workers()
        self._say(f"Starting a worker for {full}…")
        text = (
            await start_worker(self._session.connected_client(), session.target, worker, reason)
        ).describe()
        self._say(text)
        self.status_posted.emit(text)
        # the next worker is a real build unless the user picks a drill again, and the
        # new build is selected, ready for "Make selected current"
        self.drill_combo.setCurrentIndex(self.drill_combo.findData(None))
        self.build_edit.clear()
        await self._select_when_listed(full)
        return worker

    async def _select_when_listed(self, build: str) -> None:
        """Refresh until `build` is in the versions table (the server's description of
        the deployment lags the worker's registration a little), then select it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + VERSION_SHOWS_TIMEOUT_S
        while True:
            await self.refresh()
            if self.select_build(build) or loop.time() > deadline:
                return
            await asyncio.sleep(0.5)

    async def set_release(self, build: str | None, reason: str, ramp: float | None) -> None:
        from runtime.releases import set_release

        if not build:
            raise ValueError("select a build in the versions table first")
        if not reason.strip():
            raise ValueError("a release needs a reason")
        message = await set_release(
            self._session.connected_client(), self._session.target, build, reason=reason, ramp=ramp
        )
        self._say(message)
        self.status_posted.emit(message)
        await self.refresh()

    async def stop(self) -> None:
        """Stop the refresh and every worker started from this panel (app shutdown)."""
        self._timer.stop()
        self.cancel_replay_check()
        tasks = cancel_slot_tasks(self) + self.wizard.stop()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for worker in list(self.workers.values()):
            await worker.stop()

    # -- display ------------------------------------------------------------------

    @property
    def replay_pid(self) -> int | None:
        """The replay check's child process while it runs."""
        return self.replay_page.replay_pid

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _show_workers(self) -> None:
        if not self.workers:
            self.workers_label.setText("Workers started here: none")
            return
        parts = [f"{build} ({worker.state})" for build, worker in self.workers.items()]
        self.workers_label.setText("Workers started here: " + ", ".join(parts))

    async def _refused(self, coroutine: Any) -> None:
        """Bad input gets its one-line reason beside the buttons; nothing changes."""
        try:
            await coroutine
        except ValueError as error:
            self._say(str(error))

    # -- slots --------------------------------------------------------------------

    def _on_session_client_connected(self, _client: Any) -> None:
        preload.start(*HEAVY_MODULES)
        self._timer.start()
        self._on_refresh_button_clicked()

    def _on_timer_timeout(self) -> None:
        if self.isVisible():
            self._on_refresh_button_clicked()

    def _on_wizard_finished(self, progress: Any) -> None:
        # a rollback takes minutes: whichever tab is in view hears how it ended, in
        # words short enough for the status bar (the wizard's last step says it all)
        verdict = RollbackState(progress.state).value  # done or cancelled
        took = sum(progress.seconds.values())
        self.status_posted.emit(
            f"Rollback of {progress.bad_build} {verdict}: {progress.verified_ok:,} verified, "
            f"{len(progress.mismatches):,} mismatches"
            + (f" in {duration_text(took)}" if took else "")
        )

    def showEvent(self, event: QShowEvent) -> None:
        """Shown again (its tab picked): fresh counts at once, not at the next tick."""
        super().showEvent(event)
        if self._session.client is not None and self._timer.isActive():
            self._on_refresh_button_clicked()

    @async_slot(overlap="skip", title="Refreshing releases")
    async def _on_refresh_button_clicked(self) -> None:
        from temporalio.service import RPCError

        await preload.ready(*HEAVY_MODULES)
        try:
            await self.refresh()
        except RPCError as error:  # e.g. rate-limited: the next refresh will do
            self._say(f"Could not refresh: {error.message}")

    @async_slot(overlap="skip", title="Make current")
    async def _on_current_button_clicked(self) -> None:
        await self._refused(self.set_release(self.selected_build(), self.reason_edit.text(), None))

    @async_slot(overlap="skip", title="Ramp")
    async def _on_ramp_button_clicked(self) -> None:
        ramp = self.ramp_spin.value()
        await self._refused(self.set_release(self.selected_build(), self.reason_edit.text(), ramp))

    @async_slot(overlap="skip", title="Start worker")
    async def _on_start_button_clicked(self) -> None:
        drill = self.drill_combo.currentData()
        await self._refused(
            self.start_worker(self.build_edit.text(), drill, self.reason_edit.text())
        )

    @async_slot(overlap="skip", errors="status", title="Audit log")
    async def _on_audit_button_clicked(self) -> None:
        await self.load_audit()

    def _on_tabs_current_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.audit_page:
            self._on_audit_button_clicked()


def _natural(text: str) -> list[tuple[int, int | str]]:
    """A sort key that puts 0.10 after 0.9."""
    return [
        (0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", text)
    ]


__all__ = ["ReleasesPanel"]
