"""The rollback wizard: bad build -> affected members -> preview -> execute -> verify.

A stepped widget rather than a QWizard: each step waits on Temporal, and QWizard's
`validatePage` wants an answer at once. The rollback itself is a durable workflow,
so the wizard only starts it and follows its progress: when the app is reopened, the
wizard finds the running rollback and follows it again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import preload, rollback_text
from desktop.asyncutil import async_slot, cancel_slot_tasks
from desktop.layouts import button, form, hbox, label, line_edit, vbox
from desktop.release_models import (
    RecordsModel,
    affected_columns,
    preview_columns,
    verification_columns,
)
from desktop.tables import records_table
from recovery.scan import ScanProgress
from runtime.rollback_status import RollbackCount, RollbackState

if TYPE_CHECKING:
    from desktop.session import Session
    from runtime.releases import RollbackPreview
    from workflows.rollback import RollbackProgress

log = logging.getLogger(__name__)

STEPS = ("Bad build", "Affected members", "Preview", "Execute", "Verification")
CHOOSE, AFFECTED, PREVIEW, EXECUTE, VERIFY = range(len(STEPS))
POLL_INTERVAL_S = 0.5
SCAN_SHOW_S = 0.25  # the preview's counts refresh this often


class RollbackWizard(QWidget):
    """Repairs the members a bad build damaged, one confirmed step at a time.

    Signals:
        progress_changed(progress): each new reading of the rollback's progress.
        finished(progress): the rollback reached "done" or "cancelled".
    """

    progress_changed = Signal(object)
    finished = Signal(object)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.build: str | None = None
        self.report: RollbackPreview | None = None
        self.progress: RollbackProgress | None = None
        self._picked: str | None = None  # the build the operator chose in the list
        self.query: str | None = None  # the members the preview covered

        self.step_label = QLabel(self)
        self.step_label.setObjectName("wizardStep")
        font = self.step_label.font()
        font.setBold(True)
        self.step_label.setFont(font)
        self.message = QLabel(self)
        self.message.setObjectName("wizardMessage")
        self.message.setWordWrap(True)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self._choose_page())
        self.stack.addWidget(self._affected_page())
        self.stack.addWidget(self._preview_page())
        self.stack.addWidget(self._execute_page())
        self.stack.addWidget(self._verify_page())
        self.back_button = button("< Back", self)
        self.next_button = button("Next >", self, default=True)
        buttons = hbox((self.message, 1), self.back_button, self.next_button)
        vbox(self, self.step_label, (self.stack, 1), buttons)
        self._go(CHOOSE)

        self.build_combo.activated.connect(self._on_build_combo_activated)
        self.back_button.clicked.connect(self._on_back_button_clicked)
        self.next_button.clicked.connect(self._on_next_button_clicked)
        self.execute_button.clicked.connect(self._on_execute_button_clicked)
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.restart_button.clicked.connect(self._on_restart_button_clicked)
        session.client_connected.connect(self._on_session_client_connected)
        if session.client is not None:
            self.reattach()

    # -- pages ----------------------------------------------------------------------

    def _choose_page(self) -> QWidget:
        page = QWidget(self)
        self.build_combo = QComboBox(page)
        self.build_combo.setObjectName("badBuild")
        self.build_combo.setEditable(True)
        self.build_combo.setMinimumWidth(320)
        self.query_edit = line_edit(page, "optional: only members matching a visibility query")
        intro = QLabel(
            "Choose the build that damaged members. The next steps find every member it "
            "touched (across continue-as-new runs) and preview the repair; nothing changes "
            "until you execute.",
            page,
        )
        intro.setWordWrap(True)
        form(page, intro, ("Bad build:", self.build_combo), ("Members:", self.query_edit))
        return page

    def _affected_page(self) -> QWidget:
        page = QWidget(self)
        self.affected_summary = label(page, "affectedSummary")
        self.affected_model = RecordsModel(columns=affected_columns(), parent=self)
        self.affected_table = records_table(page, self.affected_model, "affectedTable")
        vbox(page, self.affected_summary, self.affected_table)
        return page

    def _preview_page(self) -> QWidget:
        page = QWidget(self)
        self.preview_model = RecordsModel(columns=preview_columns(), parent=self)
        self.preview_table = records_table(page, self.preview_model, "previewTable")
        self.totals_label = label(page, "previewTotals", wrap=True)
        vbox(page, self.preview_table, self.totals_label)
        return page

    def _execute_page(self) -> QWidget:
        page = QWidget(self)
        self.reason_edit = line_edit(
            page, "why (required; recorded in the audit log)", name="rollbackReason"
        )
        self.rate_spin = QDoubleSpinBox(page)
        self.rate_spin.setRange(1, 1000)
        self.rate_spin.setDecimals(0)
        self.rate_spin.setValue(50)
        self.rate_spin.setSuffix(" resets/s")
        self.execute_button = QPushButton("Execute rollback", page)
        self.progress_bar = QProgressBar(page)
        self.progress_bar.setFormat("%v of %m members")
        self.progress_bar.setValue(0)
        self.state_label = label(page, "rollbackState", wrap=True)
        self.pause_button = button("Pause", page)
        self.resume_button = button("Resume", page)
        self.cancel_button = button("Cancel rollback", page)
        controls = hbox(self.pause_button, self.resume_button, self.cancel_button, 1)
        form(
            page,
            ("Reason:", self.reason_edit),
            ("Rate:", self.rate_spin),
            ("", self.execute_button),
            ("Progress:", self.progress_bar),
            ("", self.state_label),
            ("", controls),
        )
        return page

    def _verify_page(self) -> QWidget:
        page = QWidget(self)
        self.verify_summary = QLabel(page)
        self.verify_summary.setObjectName("verifySummary")
        self.verify_summary.setWordWrap(True)
        self.verify_model = RecordsModel(columns=verification_columns(), parent=self)
        self.verify_table = records_table(page, self.verify_model, "verifyTable")
        self.restart_button = QPushButton("Start another rollback", page)
        layout = QVBoxLayout(page)
        layout.addWidget(self.verify_summary)
        layout.addWidget(self.verify_table, 1)
        layout.addWidget(self.restart_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(0)  # takes the table's room while it is hidden
        return page

    def stop(self) -> list[asyncio.Task[Any]]:
        """Stop following (closing the app): the rollback itself goes on in Temporal."""
        return cancel_slot_tasks(self)

    # -- state --------------------------------------------------------------------

    @property
    def step(self) -> int:
        return self.stack.currentIndex()

    def set_versions(self, versions: list[dict[str, Any]]) -> None:
        """Offer every build but the current one, drills first (the usual culprits), those
        that still run members before those that run none."""
        chosen = self._picked
        self.build_combo.clear()
        for text, build_id in rollback_text.build_choices(versions):
            self.build_combo.addItem(text, build_id)
        found = self.build_combo.findData(chosen) if chosen else -1
        self.build_combo.setCurrentIndex(max(0, found))  # a refresh keeps what was picked

    def chosen_build(self) -> str:
        data = self.build_combo.currentData()
        text = self.build_combo.currentText().strip()
        if data and self.build_combo.itemText(self.build_combo.currentIndex()) == text:
            return str(data)
        return text.split()[0] if text else ""

    def _go(self, step: int) -> None:
        self.stack.setCurrentIndex(step)
        title = f"Step {step + 1} of {len(STEPS)}: {STEPS[step]}"
        if self.build and step > CHOOSE:
            title += f" — rollback of {self.build}"
        self.step_label.setText(title)
        self.next_button.setEnabled(step in (CHOOSE, AFFECTED, PREVIEW))
        self.next_button.setText(
            {CHOOSE: "Find affected members >", AFFECTED: "Preview >"}.get(step, "Next >")
        )
        self._show_controls()

    def _show_controls(self) -> None:
        p = self.progress
        step = self.step
        self.back_button.setEnabled(step in (AFFECTED, PREVIEW) or (step == EXECUTE and p is None))
        running = p is not None and not RollbackState(p.state).finished
        self.execute_button.setEnabled(p is None and self.report is not None)
        self.reason_edit.setEnabled(p is None or running)
        self.rate_spin.setEnabled(p is None)
        self.pause_button.setEnabled(running and p is not None and p.state != RollbackState.PAUSED)
        self.resume_button.setEnabled(running and p is not None and p.state == RollbackState.PAUSED)
        self.cancel_button.setEnabled(running)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    # -- steps --------------------------------------------------------------------

    async def find_affected(self) -> None:
        """Step 1 -> 2: the members the build touched and the preview of their repair."""
        build = self.chosen_build()
        if not build:
            self._say("Choose the bad build first.")
            return
        await preload.ready("runtime.releases")
        from runtime.liability import configured_rate
        from runtime.members import deployment_query
        from runtime.releases import preview_rollback

        self._say(f"Finding the members build {build} touched…")
        self.next_button.setEnabled(False)
        # only this deployment's members: others on the namespace run other code
        query = deployment_query(
            self._session.target.deployment, self.query_edit.text().strip() or None
        )
        scan = ScanProgress()  # counts, rate and time left, from the first second

        async def show() -> None:
            while True:
                await asyncio.sleep(SCAN_SHOW_S)
                self._say(scan.tick().text())

        shown = asyncio.create_task(show())
        try:
            report = await preview_rollback(
                self._session.connected_client(),
                build,
                query,
                task_queue=self._session.target.task_queue,
                rate=configured_rate(self._session.target.data_dir),
                progress=scan,
            )
        finally:
            shown.cancel()
            self.next_button.setEnabled(True)
        self.build, self.report, self.progress, self.query = build, report, None, query
        rows = report.members
        self.affected_model.set_records(rows)
        self.preview_model.set_records(rows)
        # "0 of 100 members" (the bar's default) before the rollback starts misled
        self.progress_bar.setMaximum(max(1, report.repairable))
        self.progress_bar.setValue(0)
        self.affected_summary.setText(rollback_text.affected(report))
        self.totals_label.setText(rollback_text.totals(report))
        self._say("")
        self._go(AFFECTED)

    async def execute(self) -> None:
        """Step 4: start the durable rollback (a reason is required), then follow it."""
        if self.build is None or self.report is None:
            self._say("Preview the rollback first.")
            return
        reason = self.reason_edit.text().strip()
        if not reason:
            self._say("A rollback needs a reason: it goes into the audit log.")
            self.reason_edit.setFocus()
            return
        await preload.ready("runtime.releases")
        from runtime.releases import start_rollback

        self.execute_button.setEnabled(False)
        try:
            await start_rollback(
                self._session.connected_client(),
                self._session.target,
                self.build,
                reason=reason,
                # exactly the members of the preview the person saw, kept on the server
                preview_id=self.report.preview_id,
                rate_per_second=self.rate_spin.value(),
                query=self.query,  # the members the preview showed, no others
            )
        except BaseException:
            self._show_controls()
            raise
        self._say(f"Rollback of {self.build} started.")
        await self._read_progress()
        self.follow()

    async def control(self, action: str) -> None:
        from runtime.releases import control_rollback

        if self.build is None:
            return
        reason = self.reason_edit.text().strip() or None
        if action == "cancel" and not reason:
            self._say("Cancelling needs a reason: write it in the Reason field.")
            self.reason_edit.setFocus()
            return
        progress = await control_rollback(
            self._session.connected_client(),
            self._session.target,
            self.build,
            action,  # type: ignore[arg-type]
            reason=reason,
        )
        self._show_progress(progress)

    async def _read_progress(self) -> RollbackProgress:
        from runtime.previews import planning_scan
        from runtime.releases import rollback_progress

        assert self.build is not None
        client = self._session.connected_client()
        progress = await rollback_progress(client, self.build)
        self._show_progress(progress)
        if progress.state == RollbackState.PLANNING:  # finding the damage: how far
            scan = await planning_scan(client, self.build, progress)
            if scan is not None:
                self.state_label.setText(f"{rollback_text.progress(progress)}\n{scan.text()}")
        return progress

    @async_slot(overlap="restart", title="Following the rollback")
    async def follow(self) -> None:
        """Poll the rollback's progress until it is done or cancelled."""
        while True:
            progress = await self._read_progress()
            if RollbackState(progress.state).finished:
                self._say("")
                self._show_verification(progress)
                self.finished.emit(progress)
                return
            await asyncio.sleep(POLL_INTERVAL_S)

    @async_slot(overlap="skip", title="Looking for a running rollback")
    async def reattach(self) -> None:
        """Follow a rollback that is still running (started before the app was reopened)."""
        await preload.ready("runtime.releases")
        from runtime.releases import running_rollbacks

        if self.progress is not None:
            return
        builds = await running_rollbacks(self._session.connected_client())
        if not builds or self.progress is not None:
            return
        self.build = builds[0]
        self._say(f"Following the rollback of {self.build} that was already running.")
        await self._read_progress()
        self._go(EXECUTE)
        self.follow()

    def _show_progress(self, progress: RollbackProgress) -> None:
        self.progress = progress
        count = RollbackCount.of(progress)
        repairable, done = count.repairable, count.done
        self.progress_bar.setMaximum(max(1, repairable))
        self.progress_bar.setValue(min(done, max(1, repairable)) if repairable else 1)
        self.state_label.setText(rollback_text.progress(progress))
        if self.step != EXECUTE and not count.state.finished:
            self._go(EXECUTE)
        self._show_controls()
        self.progress_changed.emit(progress)

    def _show_verification(self, progress: RollbackProgress) -> None:
        rows = rollback_text.verification_rows(progress)
        self.verify_model.set_records(rows)
        self.verify_table.setVisible(bool(rows))  # only the members that need a look
        self.verify_summary.setText(rollback_text.verification(progress))
        self._go(VERIFY)

    # -- slots --------------------------------------------------------------------

    def _on_session_client_connected(self, _client: Any) -> None:
        self.reattach()

    @async_slot(title="Rollback preview")
    async def _on_next_button_clicked(self) -> None:
        if self.step == CHOOSE:
            await self.find_affected()
        elif self.step in (AFFECTED, PREVIEW):
            self._go(self.step + 1)

    def _on_build_combo_activated(self, index: int) -> None:
        self._picked = self.build_combo.itemData(index)

    def _on_back_button_clicked(self) -> None:
        if self.step > CHOOSE:
            self._go(self.step - 1)

    @async_slot(overlap="skip", title="Rollback")
    async def _on_execute_button_clicked(self) -> None:
        await self.execute()

    @async_slot(overlap="skip", title="Pausing the rollback")
    async def _on_pause_button_clicked(self) -> None:
        await self.control("pause")

    @async_slot(overlap="skip", title="Resuming the rollback")
    async def _on_resume_button_clicked(self) -> None:
        await self.control("resume")

    @async_slot(overlap="skip", title="Cancelling the rollback")
    async def _on_cancel_button_clicked(self) -> None:
        await self.control("cancel")

    def _on_restart_button_clicked(self) -> None:
        self.build, self.report, self.progress = None, None, None
        for model in (self.affected_model, self.preview_model, self.verify_model):
            model.set_records([])
        self.progress_bar.setValue(0)
        self.state_label.setText("")
        self._say("")
        self._go(CHOOSE)
