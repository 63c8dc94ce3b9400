"""Table models for the Releases panel and the rollback wizard.

Each table shows a list of plain records (what runtime/releases.py and the replay
check return); a `Column` says how one record becomes one cell. The records are
replaced as a whole on every refresh: these tables hold tens to thousands of rows,
never the 100,000 of the members table, so a reset is cheap and keeps no stale row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from desktop import theme
from desktop.units import local_time_text, utc_time_text

Index = QModelIndex | QPersistentModelIndex
Record = dict[str, Any]


@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[Record], str]
    sort_key: Callable[[Record], Any] | None = None
    numeric: bool = False
    foreground: Callable[[Record], QColor | None] | None = None
    background: Callable[[Record], QColor | None] | None = None
    tooltip: Callable[[Record], str] | None = None


class RecordsModel(QAbstractTableModel):
    """Rows of records, columns from `Column`s; read-only."""

    def __init__(self, *, columns: Sequence[Column], parent: Any = None) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self._rows: list[Record] = []

    @property
    def records(self) -> list[Record]:
        return list(self._rows)

    def set_records(self, rows: Sequence[Record]) -> None:
        if list(rows) == self._rows:
            return  # a periodic refresh that changed nothing keeps the scroll position
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def record(self, row: int) -> Record:
        return self._rows[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        record = self._rows[index.row()]
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(record)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column.foreground is not None:
            color = column.foreground(record)
            return QBrush(color) if color is not None else None
        if role == Qt.ItemDataRole.BackgroundRole and column.background is not None:
            color = column.background(record)
            return QBrush(color) if color is not None else None
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            return column.tooltip(record) or None
        if role == Qt.ItemDataRole.UserRole:
            return column.sort_key(record) if column.sort_key else column.text(record)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.columns)
        ):
            return self.columns[section].title
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


# -- the tables ------------------------------------------------------------------------


def drill_label(bug: str | None) -> str:
    return f"DRILL: {bug}" if bug else ""


def _status(record: Record) -> str:
    if record["status"] == "ramping":
        return f"ramping {record['ramp_percentage']:g}%"
    return str(record["status"])


def version_columns() -> list[Column]:
    return [
        Column("Build", lambda r: str(r["build_id"])),
        Column(
            "Drill",
            lambda r: drill_label(r["drill"]),
            foreground=lambda r: theme.color("drill_text") if r["drill"] else None,
            background=lambda r: theme.color("drill_background") if r["drill"] else None,
            tooltip=lambda r: (
                f"a drill build: the real code with the '{r['drill']}' bug injected on purpose"
                if r["drill"]
                else ""
            ),
        ),
        Column(
            "Status",
            _status,
            foreground=lambda r: theme.color("good") if r["status"] == "current" else None,
        ),
        Column("Members", lambda r: f"{r['members']:,}", lambda r: r["members"], numeric=True),
    ]


def _arrow(field: str) -> Callable[[Record], str]:
    def text(record: Record) -> str:
        before, after = record["before"].get(field), record["after"].get(field)
        if before == after:
            return f"{before:,}" if isinstance(before, int) else str(before)
        if isinstance(before, int) and isinstance(after, int):
            return f"{before:,} → {after:,} ({after - before:+,})"
        return f"{before} → {after}"

    return text


def _changed(field: str) -> Callable[[Record], QColor | None]:
    def color(record: Record) -> QColor | None:
        changed = record["before"].get(field) != record["after"].get(field)
        return theme.color("changed_background") if changed else None

    return color


def preview_columns() -> list[Column]:
    return [
        Column("Member", lambda r: str(r["member_id"])),
        Column("Points", _arrow("points"), numeric=True, background=_changed("points")),
        Column("Tier", _arrow("tier"), background=_changed("tier")),
        Column(
            "Lifetime points",
            _arrow("lifetime_points"),
            numeric=True,
            background=_changed("lifetime_points"),
        ),
        Column(
            "Ledger",
            lambda r: f"-{len(r['ledger_removed'])} +{len(r['ledger_added'])}",
            tooltip=_ledger_tooltip,
        ),
        Column("Re-deliver", lambda r: str(r["redeliver"]), numeric=True),
        Column(
            "Repair",
            lambda r: f"not repairable: {r['problem']}" if r["problem"] else "repairable",
            foreground=lambda r: theme.color("bad") if r["problem"] else None,
        ),
        Column("Decisions", _decisions_text, tooltip=_decisions_tooltip),
    ]


def _decisions_text(record: Record) -> str:
    """People's decisions the repair re-sends: how many apply again, how many drop."""
    decisions = record.get("decisions") or []
    if not decisions:
        return ""
    dropped = sum(1 for d in decisions if d["fate"] == "dropped")
    text = f"{len(decisions) - dropped} re-sent"
    return text + (f", {dropped} approval dropped" if dropped else "")


def _decisions_tooltip(record: Record) -> str:
    fates = {
        "applies": "applies again (its proposal is kept)",
        "re-run": "applies if the agent's re-run proposes the same; else pending again",
        "dropped": "dropped: its trigger does not fire again",
    }
    return "\n".join(
        f"{d['proposal_id']} {d['action']}: {fates.get(d['fate'], d['fate'])}"
        for d in record.get("decisions") or []
    )


def _ledger_tooltip(record: Record) -> str:
    lines = [f"- {e['kind']} {e['delta']:+} ({e['cause']})" for e in record["ledger_removed"]]
    lines += [f"+ {e['kind']} {e['delta']:+} ({e['cause']})" for e in record["ledger_added"]]
    return "\n".join(lines[:30])


def affected_columns() -> list[Column]:
    return [
        Column("Member", lambda r: str(r["member_id"])),
        Column(
            "Repairable",
            lambda r: "no" if r["problem"] else "yes",
            foreground=lambda r: theme.color("bad") if r["problem"] else theme.color("good"),
        ),
        Column("Why not", lambda r: str(r["problem"] or "")),
    ]


def replay_columns() -> list[Column]:
    def why(record: Record) -> str:
        differences = ", ".join(
            f"{k} live {v[0]} vs candidate {v[1]}" for k, v in record["differences"].items()
        )
        failure = record["nondeterminism"]
        if failure:
            failure = _core_message(failure)
            return f"{failure}; {differences}" if differences else failure
        why = str(record["unchecked"] or differences)
        note = record.get("note")
        return f"{why}; {note}" if why and note else why or note or ""

    return [
        Column("Member", lambda r: str(r["member_id"])),
        Column("Runs", lambda r: str(r["runs"]), numeric=True),
        Column("Events", lambda r: str(r["events"]), numeric=True),
        Column(
            "Verdict",
            lambda r: "GO" if r["go"] else "NO-GO",
            foreground=lambda r: theme.color("good") if r["go"] else theme.color("bad"),
        ),
        Column("Why", why, tooltip=why),
    ]


def _core_message(failure: str) -> str:
    """The SDK core wraps the reason in a Rust debug dump: keep the reason."""
    start = failure.find("Nondeterminism error")
    if start < 0:
        return failure
    end = failure.find('"', start)
    return failure[start : end if end > 0 else None]


def audit_columns() -> list[Column]:
    return [
        # the operator's time zone, UTC on hover (as every time the window shows)
        Column(
            "When",
            lambda r: local_time_text(r["at"]) or str(r["at"]),
            tooltip=lambda r: utc_time_text(r["at"]),
        ),
        Column("Who", lambda r: str(r["actor"])),
        Column("Action", lambda r: str(r["action"])),
        Column("Target", lambda r: str(r["subject"])),
        Column("Why", lambda r: str(r["reason"]), tooltip=lambda r: str(r["reason"])),
        Column("Outcome", lambda r: str(r.get("outcome") or "")),
        Column("#", lambda r: str(r.get("seq") or ""), numeric=True),
    ]


def verification_columns() -> list[Column]:
    return [
        Column("Member", lambda r: str(r["member_id"])),
        Column(
            "Result",
            lambda r: str(r["result"]),
            foreground=lambda r: (
                theme.color("good") if r["result"] == "verified" else theme.color("bad")
            ),
        ),
        Column("Details", lambda r: str(r["details"]), tooltip=lambda r: str(r["details"])),
    ]
