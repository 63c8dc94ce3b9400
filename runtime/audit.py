"""Recording operator actions in the audit log (workflows/audit.py).

Every operator action is recorded here, in the operations layer the CLI and the window
share: `record` for one action, `send` for an entry built elsewhere (a decision:
workflows.audit.decision_entry).
Reading, verifying and exporting the record: runtime.audit_log.

The whole record is the archive (activities/audit_archive.py: entries of runs that
continued as new, an append-only file, because retention deletes closed runs) followed
by the open run's entries (a query). `verify` recomputes every hash, checks the
sequence and the links, and compares each archived batch with the anchor the open run
holds for it; it names the first entry that does not hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.audit_archive import ARCHIVE_FILE, archive_path
from activities.audit_send import send_audit
from runtime import temporal_settings
from runtime.connect import TASK_QUEUE, Target
from runtime.deployment import identity
from workflows.audit import (
    AuditEntry,
)

COLUMNS = ("seq", "at", "actor", "action", "target", "reason", "outcome", "details", "prev", "hash")
FORMATS = ("jsonl", "csv")
QUERY_TIMEOUT = timedelta(seconds=10)


class AuditError(RuntimeError):
    """The audit log can't be read or written; the message is one line."""


def archive_file(data_dir: Path) -> Path:
    """Where this data dir's worker archives: settings.json "audit": {"archive": PATH},
    else DATA_DIR/audit-archive.jsonl."""
    try:
        section = temporal_settings.read_raw(data_dir).get("audit") or {}
    except temporal_settings.TemporalSettingsError:
        section = {}
    configured = section.get("archive") if isinstance(section, dict) else None
    return archive_path(data_dir, configured if isinstance(configured, str) else None)


# -- recording --------------------------------------------------------------------


async def record(
    client: Client,
    target: Target,
    action: str,
    *,
    reason: str,
    subject: str,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
    outcome: str = "",
) -> None:
    """Record one operator action: who (OS user @ host), what, why, on what, with what
    outcome; the audit workflow adds when, the sequence number and the hash."""
    if not reason or not reason.strip():
        raise ValueError(f"{action} needs a reason (--reason)")
    entry = AuditEntry(
        action, actor or identity(), reason.strip(), subject, details or {}, outcome=outcome
    )
    await send(client, entry, task_queue=target.task_queue)


async def send(client: Client, entry: AuditEntry, *, task_queue: str | None = None) -> None:
    """Signal the entry to the audit workflow, starting it (on `task_queue`, else the
    default one) when the namespace has none running."""
    await send_audit(client, entry, task_queue=task_queue, fallback_queue=TASK_QUEUE)


NO_REASON = "(no reason given)"


async def record_secret(
    client: Client, target: Target, name: str, action: str, *, outcome: str, reason: str = ""
) -> None:
    """A secret stored or deleted: its name and where, never its value."""
    await record(
        client,
        target,
        f"secret.{action}",
        reason=reason.strip() or NO_REASON,
        subject=name,
        details={"name": name},
        outcome=outcome,
    )


async def record_settings(
    client: Client,
    target: Target,
    section: str,
    changed: Iterable[str],
    *,
    outcome: str,
    reason: str = "",
) -> None:
    """Settings changed: the section and the names of what changed, never the values
    (a value might be something secret pasted in the wrong place)."""
    await record(
        client,
        target,
        "settings.change",
        reason=reason.strip() or NO_REASON,
        subject=section,
        details={"changed": sorted(changed)},
        outcome=outcome,
    )


async def record_saved_settings(
    client: Client,
    target: Target,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    secrets_stored: Iterable[str] = (),
    backend: str = "",
    reason: str = "",
) -> None:
    """What one Save of the Settings tab changed: an entry per changed section (names
    only) and one per secret stored (its name and the keyring backend)."""
    for section in sorted(set(before) | set(after)):
        old, new = before.get(section), after.get(section)
        names = changed_names(
            {section: old} if old is not None else {}, {section: new} if new is not None else {}
        )
        if names:
            await record_settings(client, target, section, names, outcome="saved", reason=reason)
    for name in secrets_stored:
        await record_secret(
            client, target, name, "set", outcome=f"stored in {backend}", reason=reason
        )


def changed_names(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of every value that differs between two settings dicts."""
    names: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) or isinstance(new, dict):
            names += changed_names(
                old if isinstance(old, dict) else {},
                new if isinstance(new, dict) else {},
                f"{prefix}{key}.",
            )
        elif old != new:
            names.append(f"{prefix}{key}")
    return names


def record_offline(target: Target, write: Any, *, timeout: float = 15.0) -> str | None:
    """Run `write(client)` (a record_* call) on a fresh connection, for the commands that
    change local things (keyring, settings file) without a server of their own. None when
    recorded, else the one-line reason it could not be (the change itself stands)."""
    from runtime.connect import connect

    async def go() -> None:
        client = await connect(target)
        await write(client)

    try:
        asyncio.run(asyncio.wait_for(go(), timeout))
    except Exception as error:  # unreachable server, no worker, ...: said, not fatal
        text = str(error).strip().splitlines()
        return text[0] if text else type(error).__name__
    return None


__all__ = ["ARCHIVE_FILE", "COLUMNS", "AuditError", "record"]
