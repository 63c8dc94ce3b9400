"""The audit log page: every entry (archive and open run), filtered by actor, action,
member and time without another trip to the server.

The Releases panel owns it and its Refresh button (`refresh_button`), and calls `load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.layouts import line_edit
from desktop.release_models import RecordsModel, audit_columns
from desktop.tables import records_table
from runtime import audit_log


class AuditPage(QWidget):
    """The audit log with its filters. No signals of its own."""

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []
        self._note = ""
        self.refresh_button = QPushButton("Refresh", self)
        self.actor_edit = _filter(self, "auditActorFilter", "who (part of the name)")
        self.action_edit = _filter(self, "auditActionFilter", "action, e.g. approval or rollback")
        self.member_edit = _filter(self, "auditMemberFilter", "member id")
        self.since_edit = _filter(self, "auditSinceFilter", "from YYYY-MM-DD or ISO time")
        self.until_edit = _filter(self, "auditUntilFilter", "to YYYY-MM-DD or ISO time")
        self.status = QLabel(self)
        self.status.setObjectName("auditStatus")
        self.model = RecordsModel(columns=audit_columns(), parent=self)
        table = records_table(self, self.model, "auditTable")

        filters = QHBoxLayout()
        filters.addWidget(self.refresh_button)
        for edit in self.filter_edits():
            filters.addWidget(edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.status)
        layout.addWidget(table, 1)

        for edit in self.filter_edits():
            edit.textChanged.connect(self._on_filter_text_changed)

    def filter_edits(self) -> list[QLineEdit]:
        return [
            self.actor_edit,
            self.action_edit,
            self.member_edit,
            self.since_edit,
            self.until_edit,
        ]

    async def load(self, client: Any, data_dir: Path) -> None:

        # first what the kept histories hold (no worker needed, quick), then the whole
        # record: the archive and the open run, whose query waits for a worker
        self._rows = await audit_log.entries(client, limit=500)
        self._note = "reading the archive and the open run…"
        self.apply_filters()
        self._rows, self._note = await audit_log.rows_for_window(client, data_dir)
        self.apply_filters()

    def apply_filters(self) -> None:
        """Show the rows every filter lets through; a bad time says why and shows none."""

        try:
            shown = audit_log.filter_rows(
                self._rows,
                actor=self.actor_edit.text(),
                action=self.action_edit.text(),
                member=self.member_edit.text(),
                since=self.since_edit.text(),
                until=self.until_edit.text(),
            )
        except ValueError as error:
            self.model.set_records([])
            self.status.setText(str(error))
            return
        self.model.set_records(shown)
        self.status.setText(
            f"{len(shown)} of {len(self._rows)} shown" + (f" · {self._note}" if self._note else "")
        )

    def _on_filter_text_changed(self, _text: str) -> None:
        self.apply_filters()


def _filter(parent: QWidget, name: str, placeholder: str) -> QLineEdit:
    edit = line_edit(parent, placeholder, name=name)
    edit.setClearButtonEnabled(True)
    return edit


__all__ = ["AuditPage"]
