"""Helpers the member-table tests share: rows as the store keeps them, a visibility stand-in
for the loader (the loader's own paging logic, no server)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from desktop.members_store import Row


def member(member_id: str, points: int = 0, **fields: Any) -> Row:
    row: Row = {
        "member_id": member_id,
        "tier": "Blue",
        "points": points,
        "last_event_at": "2026-01-19T09:02:00Z",
        "pending_proposals": 0,
        "build_id": "1.0",
        "drill": None,
        "run_id": "run-1",
    }
    row.update(fields)
    return row


class FakeVisibility:
    """Server order is newest first, like Temporal's; `IN` queries answered by id."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.queries: list[str | None] = []
        self.gate: asyncio.Event | None = None

    async def page(
        self, query: str | None, token: bytes | None, size: int
    ) -> tuple[list[Row], bytes | None]:
        self.queries.append(query)
        if self.gate is not None:
            await self.gate.wait()
        rows = self.rows
        if query and "WorkflowId IN" in query:
            wanted = set(re.findall(r"'member-([^']+)'", query))
            rows = [r for r in rows if r["member_id"] in wanted]
        start = int(token or b"0")
        end = start + size
        return rows[start:end], (str(end).encode() if end < len(rows) else None)

    async def count(self, query: str | None) -> int:
        return len(self.rows)
