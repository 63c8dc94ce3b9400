"""The outbox: external effects of approved proposals (messages to members, fraud cases,
tier-change requests), one row per proposal in a SQLite file under the data dir.

Idempotent by proposal id (a UNIQUE key and INSERT OR IGNORE): an activity retry, a
replayed approval after a reset, or a second worker delivering the same entry all
leave exactly one row. Whatever sends the messages on reads this table.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from temporalio import activity

from workflows.agent_io import OUTBOX_DELIVER_ACTIVITY, OutboxEntry, OutboxReceipt

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id TEXT NOT NULL UNIQUE,
    member_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    delivered_at TEXT NOT NULL
)
"""


class Outbox:
    """The outbox at `path`; the worker passes its data dir's file (never a workflow)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SCHEMA)
        return db

    def put(self, entry: OutboxEntry) -> OutboxReceipt:
        db = self._connect()
        try:
            with db:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO outbox (proposal_id, member_id, kind, payload, "
                    "decided_by, decided_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.proposal_id,
                        entry.member_id,
                        entry.kind,
                        json.dumps(entry.payload, sort_keys=True),
                        entry.decided_by,
                        entry.decided_at,
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    ),
                )
                inserted = cursor.rowcount == 1
                row = db.execute(
                    "SELECT id FROM outbox WHERE proposal_id = ?", (entry.proposal_id,)
                ).fetchone()
        finally:
            db.close()
        return OutboxReceipt(entry.proposal_id, inserted, int(row[0]))

    def rows(self, proposal_id: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        db = self._connect()
        try:
            db.row_factory = sqlite3.Row
            query = "SELECT * FROM outbox"
            args: tuple[Any, ...] = ()
            if proposal_id is not None:
                query += " WHERE proposal_id = ?"
                args = (proposal_id,)
            return [
                {**dict(r), "payload": json.loads(r["payload"])}
                for r in db.execute(query + " ORDER BY id", args)
            ]
        finally:
            db.close()

    @activity.defn(name=OUTBOX_DELIVER_ACTIVITY)
    async def deliver(self, entry: OutboxEntry) -> OutboxReceipt:
        receipt = await asyncio.to_thread(self.put, entry)
        if not receipt.inserted:
            activity.logger.info("outbox already holds %s; nothing added", entry.proposal_id)
        return receipt


def outbox_path(data_dir: Path) -> Path:
    return Path(data_dir) / "outbox.sqlite"
