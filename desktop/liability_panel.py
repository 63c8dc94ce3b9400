"""What the outstanding points are worth: the liability report (runtime.liability, the
same operation as `loyalty-desk liability`) for this desk's deployment, with its
progress as it reads visibility page by page, a cancel, and CSV export.

The rate starts at the configured one (settings.json {"liability": {"rate": R}}, else
0.01 a point); changing it here values the next report, not the settings.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.asyncutil import async_slot, cancel_slot_tasks, run_dialog
from desktop.release_models import Column, RecordsModel
from desktop.tables import records_table
from desktop.units import money_text
from runtime import liability

if TYPE_CHECKING:
    from desktop.session import Session


def liability_columns() -> list[Column]:
    def count(key: str) -> Any:
        return lambda r: f"{r[key]:,}"

    return [
        Column("Group", lambda r: str(r["group"])),
        Column("Members", count("members"), numeric=True),
        Column("Points", count("points"), numeric=True),
        Column("Value", lambda r: money_text(r["value"]), numeric=True),
        *(
            Column(f"Expiring in {d} days", count(f"expiring_{d}d"), numeric=True)
            for d in liability.HORIZONS
        ),
    ]


class LiabilityPanel(QWidget):
    """The report's groups (all members, then each tier) in a table.

    Signals:
        status_posted(text): a short message for the status bar.
    """

    status_posted = Signal(str)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.report: liability.LiabilityReport | None = None
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setObjectName("liabilityRefresh")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setEnabled(False)
        self.rate_spin = QDoubleSpinBox(self)
        self.rate_spin.setObjectName("liabilityRate")
        self.rate_spin.setDecimals(4)
        self.rate_spin.setRange(0.0, liability.MAX_RATE)
        self.rate_spin.setSingleStep(0.001)
        self.rate_spin.setSuffix(" a point")
        try:
            self.rate_spin.setValue(liability.configured_rate(session.target.data_dir))
            note = ""
        except liability.LiabilityError as error:
            self.rate_spin.setValue(liability.DEFAULT_RATE)
            note = f"settings.json: {error}; using {liability.DEFAULT_RATE:g} a point"
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setFormat("%v of %m members read")
        self.progress_bar.setVisible(False)
        self.summary = QLabel(note or "Refresh to read what the members' points are worth.", self)
        self.summary.setObjectName("liabilitySummary")
        self.summary.setWordWrap(True)
        self.model = RecordsModel(columns=liability_columns(), parent=self)
        self.table = records_table(self, self.model, "liabilityTable")

        controls = QHBoxLayout()
        controls.addWidget(self.refresh_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(QLabel("Rate", self))
        controls.addWidget(self.rate_spin)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.export_button.clicked.connect(self._on_export_button_clicked)

    def stop(self) -> list[asyncio.Task[Any]]:
        return cancel_slot_tasks(self)

    @async_slot(overlap="skip", errors="status", title="Could not read the liability")
    async def refresh(self) -> None:
        """Read the report for this deployment's members, showing progress as it goes."""
        from runtime.members import deployment_query

        client = self._session.connected_client()
        self.refresh_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.summary.setText("Counting the members…")
        try:
            report = await liability.report(
                client,
                deployment_query(self._session.target.deployment),
                rate=self.rate_spin.value(),
                progress=self._on_progress,
            )
        except asyncio.CancelledError:
            self.summary.setText("Cancelled: the last complete report is still shown.")
            raise
        finally:
            self.refresh_button.setEnabled(True)
            self.cancel_button.setEnabled(False)
            self.progress_bar.setVisible(False)
        self.show_report(report)

    def show_report(self, report: liability.LiabilityReport) -> None:
        self.report = report
        self.model.set_records([{"group": name, **g.row()} for name, g in report.groups()])
        t = report.total
        self.summary.setText(
            f"{t.members:,} members hold {t.points:,} points worth {money_text(t.value)} at "
            f"{report.rate:g} a point; {t.expiring[30]:,} points may expire within 30 days "
            f"(dated from each member's latest event: an upper bound). Read in "
            f"{report.seconds:.1f} s."
        )
        self.export_button.setEnabled(True)
        self.status_posted.emit(f"Liability: {money_text(t.value)} for {t.members:,} members")

    def export(self, path: Path) -> None:
        """The shown report as CSV (the same text as `loyalty-desk liability --csv --by tier`)."""
        if self.report is None:
            raise RuntimeError("refresh the report first")
        path.write_text(self.report.csv_text(), encoding="utf-8")
        self.status_posted.emit(f"Liability exported to {path}")

    def _on_progress(self, read: int, total: int | None) -> None:
        if total is not None:
            self.progress_bar.setMaximum(max(1, total))
        self.progress_bar.setValue(read)
        of = f" of {total:,}" if total is not None else ""
        self.summary.setText(f"Reading the members' points: {read:,}{of}…")

    # -- slots --------------------------------------------------------------------

    def _on_refresh_button_clicked(self) -> None:
        self.refresh()

    def _on_cancel_button_clicked(self) -> None:
        cancel_slot_tasks(self)

    @async_slot(overlap="skip", title="Could not export the liability")
    async def _on_export_button_clicked(self) -> None:
        dialog = QFileDialog(self, "Export the liability report", "liability.csv")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("CSV (*.csv)")
        if await run_dialog(dialog) and dialog.selectedFiles():
            self.export(Path(dialog.selectedFiles()[0]))
