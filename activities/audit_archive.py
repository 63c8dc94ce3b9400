"""The audit archive: an append-only JSON Lines file of audit entries, one per line.

The audit workflow hands each run's entries here before it continues as new (the
namespace's retention deletes closed runs, never this file). Appending is idempotent
by sequence number: a retried batch, or a batch two workers both wrote, adds only the
entries past the file's last one. The file is only ever appended to; `loyalty-desk
audit verify` recomputes every hash and checks the chain (runtime/audit.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Any

from temporalio import activity

from workflows.audit import ARCHIVE_ACTIVITY, ArchiveBatch, AuditEntry

ARCHIVE_FILE = "audit-archive.jsonl"
_TAIL_CHUNK = 1 << 16


def archive_path(data_dir: Path, configured: str | None = None) -> Path:
    """`configured` (settings.json "audit": {"archive": PATH}) or DATA_DIR/audit-archive.jsonl."""
    return Path(configured).expanduser() if configured else Path(data_dir) / ARCHIVE_FILE


def row_of(entry: AuditEntry) -> dict[str, Any]:
    """An entry as stored and exported: `target` is the entry's subject."""
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.subject,
        "reason": entry.reason,
        "outcome": entry.outcome,
        "details": entry.details,
        "prev": entry.prev,
        "hash": entry.hash,
    }


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def last_line(path: Path) -> str | None:
    """The file's last complete line (read backwards from the end), or None."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None
        tail = b""
        position = end
        while position > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
            lines = tail.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or position == 0:
                return lines[-1].decode("utf-8", errors="replace")
    return None


def last_seq(path: Path) -> int:
    line = last_line(path)
    if not line:
        return 0
    try:
        return int(json.loads(line)["seq"])
    except (ValueError, KeyError, TypeError):
        return 0  # a broken last line: appended after, and `audit verify` names it


def append(path: Path, entries: list[AuditEntry]) -> int:
    """Append the entries past the file's last sequence number; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two workers sharing a data dir: one at a time
        try:
            after = last_seq(path)
            fresh = [e for e in entries if e.seq > after]
            if not fresh:
                return 0
            text = "".join(dumps(row_of(e)) + "\n" for e in fresh)
            if handle.tell() and not _ends_with_newline(path):
                text = "\n" + text  # a torn line stays visible, never glued to the next
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
            return len(fresh)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class AuditArchive:
    """The archive at `path`; the worker passes its own (never a workflow)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @activity.defn(name=ARCHIVE_ACTIVITY)
    async def archive(self, batch: ArchiveBatch) -> str:
        added = await asyncio.to_thread(append, self.path, batch.entries)
        activity.logger.info("audit archive %s: %d entries added", self.path, added)
        return f"{socket.gethostname()}:{self.path}"
