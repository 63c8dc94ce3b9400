"""Item models of the member detail: the ledger, the proposals and the timeline."""

from __future__ import annotations

from typing import Any

from desktop import theme
from desktop.keyed_rows_model import Column, KeyedRowsModel, Row
from desktop.member_detail_text import proposal_text, short_run, short_time
from desktop.units import money_text

# theme status colours by meaning (desktop/theme.py)
_STATUS_TONES = {"pending": "warn", "approved": "good", "rejected": "bad"}
_KIND_TONES = {
    "reset": "bad",
    "build": "build",
    "proposal": "info",
    "decision": "info",
    "adjustment": "warn",
    "redemption": "warn",
}


class LedgerModel(KeyedRowsModel):
    """Ledger entries, oldest first: every change of balance with its cause and build."""

    KEY_FIELD = "seq"
    COLUMNS = (
        Column("seq", "#", numeric=True),
        Column("at", "When", time=True),
        Column("kind", "Kind"),
        Column("cause", "Cause"),
        Column("delta", "Change", numeric=True),
        Column("balance", "Balance", numeric=True),
        Column("build", "Build"),
    )

    def display(self, row: Row, key: str) -> str:
        value = row.get(key)
        if key == "at":
            return short_time(value)
        if key == "delta" and isinstance(value, int):
            return f"{value:+,}"
        if key == "balance" and isinstance(value, int):
            return f"{value:,}"
        return super().display(row, key)

    def tooltip(self, row: Row, key: str) -> str | None:
        return str(row.get("cause") or "") if key == "cause" else None

    def foreground(self, row: Row, key: str) -> Any:
        if key == "delta" and isinstance(row.get("delta"), int):
            return theme.brush("bad" if row["delta"] < 0 else "good")
        return None


class TimelineModel(KeyedRowsModel):
    """The member's timeline across runs and resets (see `member_detail_timeline`)."""

    COLUMNS = (
        Column("at", "When", time=True),
        Column("kind", "What"),
        Column("detail", "Detail"),
        Column("build", "Build"),
        Column("run_id", "Run"),
    )

    def display(self, row: Row, key: str) -> str:
        value = row.get(key)
        if key == "at":
            return short_time(value)
        if key == "run_id":
            return short_run(str(value or ""))
        return super().display(row, key)

    def tooltip(self, row: Row, key: str) -> str | None:
        if key == "detail":
            return str(row.get("detail") or "")
        if key == "run_id":
            return str(row.get("run_id") or "") or None
        return None

    def foreground(self, row: Row, key: str) -> Any:
        tone = _KIND_TONES.get(str(row.get("kind")))
        return theme.brush(tone) if tone is not None and key == "kind" else None


class ProposalsModel(KeyedRowsModel):
    """The member's proposals, pending and recently decided, oldest first."""

    KEY_FIELD = "id"
    COLUMNS = (
        Column("created_at", "Proposed", time=True),
        Column("action", "Action"),
        Column("what", "Proposal"),
        Column("status", "Status"),
        Column("model", "Model"),
        Column("cost_usd", "Cost", numeric=True),
        Column("decision", "Decision"),  # last: it takes the room left
    )

    def display(self, row: Row, key: str) -> str:
        if key == "created_at":
            return short_time(row.get(key))
        if key == "what":
            return proposal_text(row)
        if key == "cost_usd":
            cost = row.get("cost_usd")
            return money_text(cost) if isinstance(cost, int | float) else ""
        if key == "decision":
            who = row.get("decided_by")
            return f"{who}: {row.get('decision_reason') or ''}" if who else ""
        return super().display(row, key)

    def tooltip(self, row: Row, key: str) -> str | None:
        if key == "what":
            return f"{proposal_text(row)}\nAgent's reason: {row.get('reason') or ''}"
        if key == "decision":
            return self.display(row, key) or None
        return None

    def foreground(self, row: Row, key: str) -> Any:
        tone = _STATUS_TONES.get(str(row.get("status")))
        return theme.brush(tone) if tone is not None and key == "status" else None
