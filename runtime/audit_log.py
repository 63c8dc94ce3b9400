"""Reading, verifying and exporting the audit log that runtime.audit records: the whole
record is the archive (entries of runs that continued as new, an append-only file,
because retention deletes closed runs) followed by the open run's entries (a query).
`verify_record` recomputes every hash, checks the sequence and the links, and compares
each archived batch with the anchor the open run holds for it; it names the first entry
that does not hold. Also the window's audit page rows and the plain list from history.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from activities.audit_archive import row_of
from recovery.found import if_found
from runtime.audit import COLUMNS, FORMATS, QUERY_TIMEOUT, AuditError, archive_file
from workflows.audit import (
    AUDIT_WORKFLOW_ID,
    GENESIS,
    SIGNAL_RECORD,
    ArchiveAnchor,
    AuditEntry,
    AuditWorkflow,
    entry_hash,
)

# -- reading ----------------------------------------------------------------------


@dataclass
class Record:
    """The whole record: archived rows (with the line each came from), live rows, anchors."""

    archive: list[dict[str, Any]] = field(default_factory=list)
    archive_problems: list[dict[str, Any]] = field(default_factory=list)  # unreadable lines
    live: list[dict[str, Any]] = field(default_factory=list)
    anchors: list[ArchiveAnchor] = field(default_factory=list)
    archive_path: str = ""

    def rows(self) -> list[dict[str, Any]]:
        """Archive then live; an entry both archived and still live (its run had not
        continued as new yet) once. A live entry that differs from the archived one of
        its number is kept: `verify` names it, export never hides it."""
        seen = {(r.get("seq"), r.get("hash")) for r in self.archive}
        return [*self.archive, *(r for r in self.live if (r["seq"], r["hash"]) not in seen)]


def read_archive(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The archive's rows, and the lines that are not entries (line numbers from 1)."""
    rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return rows, problems
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not an object")
            except ValueError:
                problems.append({"line": number, "problem": "not a JSON entry"})
                rows.append({"seq": None, "line": number, "broken": "not a JSON entry"})
                continue
            row["line"] = number
            rows.append(row)
    return rows, problems


async def read_live(client: Client) -> tuple[list[dict[str, Any]], list[ArchiveAnchor]]:
    """The open run's entries and anchors ([] when there is no audit log yet)."""
    handle = client.get_workflow_handle(AUDIT_WORKFLOW_ID)
    try:
        # bounded: with no worker on its queue a query waits, and the window would too
        entries = await handle.query(AuditWorkflow.entries, rpc_timeout=QUERY_TIMEOUT)
        anchors = await handle.query(AuditWorkflow.anchors, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return [], []
        raise AuditError(
            f"the audit workflow did not answer ({error.message.splitlines()[0]}): "
            "is a worker running?"
        ) from None
    return [row_of(e) for e in entries], list(anchors)


async def read_record(client: Client, data_dir: Path) -> Record:
    path = archive_file(data_dir)
    archived, problems = await asyncio.to_thread(read_archive, path)
    live, anchors = await read_live(client)
    return Record(archived, problems, live, anchors, str(path))


# -- verifying --------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    checked: int
    first_broken: dict[str, Any] | None = None  # seq, line (in a file), where, problem

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        if self.ok:
            return f"the audit chain holds: {self.checked} entries checked"
        b = self.first_broken or {}
        place = f"entry {b.get('seq')}" if b.get("seq") is not None else "an entry"
        if b.get("line"):
            place += f" (line {b['line']} of {b.get('where') or 'the file'})"
        elif b.get("where"):
            place += f" ({b['where']})"
        return f"BROKEN at {place}: {b.get('problem')}"


def _broken(row: dict[str, Any], where: str, problem: str) -> dict[str, Any]:
    return {"seq": row.get("seq"), "line": row.get("line"), "where": where, "problem": problem}


def verify_rows(
    rows: list[dict[str, Any]],
    anchors: Iterable[ArchiveAnchor] = (),
    *,
    where: str = "",
    live_from: int | None = None,
) -> Verdict:
    """Check a chain from its first entry: each hash over its content, each sequence
    number one more than the last, each `prev` the hash before, and each anchored batch
    ending in the hash its anchor holds. `live_from`: rows from that index came from the
    open run (named so in the verdict)."""
    by_last = {a.last: a for a in anchors}
    expected_seq, prev = 1, GENESIS
    for index, row in enumerate(rows):
        place = "the open run" if live_from is not None and index >= live_from else where
        if row.get("broken"):
            return Verdict(False, index, _broken(row, place, row["broken"]))
        try:
            digest = entry_hash({**row, "subject": row["target"]})
            seq = int(row["seq"])
        except (KeyError, TypeError, ValueError) as error:
            return Verdict(False, index, _broken(row, place, f"a field is missing or bad: {error}"))
        if seq != expected_seq:
            missing = f"entries {expected_seq}..{seq - 1} are missing" if seq > expected_seq else ""
            hint = next(
                (f" (archived at {a.where})" for a in anchors if a.first <= expected_seq <= a.last),
                "",
            )
            problem = (
                missing + hint
                if missing
                else f"entry {seq} comes after entry {expected_seq - 1} (repeated or out of order)"
            )
            return Verdict(
                False, index, _broken(row, place, f"expected entry {expected_seq}: {problem}")
            )
        if digest != row.get("hash"):
            return Verdict(
                False, index, _broken(row, place, "its content does not match its hash (edited)")
            )
        if row.get("prev") != prev:
            return Verdict(
                False, index, _broken(row, place, f"it does not chain to entry {seq - 1}")
            )
        anchor = by_last.get(seq)
        if anchor is not None and anchor.last_hash != row["hash"]:
            return Verdict(
                False,
                index,
                _broken(
                    row,
                    place,
                    f"batch {anchor.first}..{anchor.last} differs from the anchor the audit "
                    "workflow holds (rewritten)",
                ),
            )
        expected_seq, prev = seq + 1, row["hash"]
    last_anchor = max((a.last for a in anchors), default=0)
    if last_anchor >= expected_seq:
        missing_row = {"seq": expected_seq, "line": None}
        return Verdict(
            False,
            len(rows),
            _broken(missing_row, where, f"entries {expected_seq}..{last_anchor} are missing"),
        )
    return Verdict(True, len(rows))


def verify_record(record: Record) -> Verdict:
    rows = record.rows()
    live_seqs = {r["seq"] for r in record.live}
    archived_seqs = {r["seq"] for r in record.archive}
    # an entry both archived and still live (before the run continued) must be the same
    live_by_seq = {r["seq"]: r for r in record.live}
    for row in record.archive:
        twin = live_by_seq.get(row.get("seq"))
        if twin is not None and twin.get("hash") != row.get("hash"):
            return Verdict(
                False, 0, _broken(row, record.archive_path, "it differs from the open run's copy")
            )
    live_from = len(record.archive) if live_seqs - archived_seqs else None
    return verify_rows(rows, record.anchors, where=record.archive_path, live_from=live_from)


# -- exporting ----------------------------------------------------------------------


def export_text(rows: Iterable[dict[str, Any]], fmt: str) -> str:
    if fmt not in FORMATS:
        raise AuditError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    clean = [{k: r.get(k) for k in COLUMNS} for r in rows if not r.get("broken")]
    if fmt == "jsonl":
        return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in clean)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in clean:
        writer.writerow({**r, "details": json.dumps(r["details"], sort_keys=True)})
    return out.getvalue()


def read_export(path: Path) -> list[dict[str, Any]]:
    """Rows of an exported file (CSV by its header, else JSON Lines), with line numbers."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    rows: list[dict[str, Any]] = []
    if text.startswith(",".join(COLUMNS)):
        for number, raw in enumerate(csv.DictReader(io.StringIO(text)), 2):
            try:
                row: dict[str, Any] = {**raw, "seq": int(raw["seq"])}
                row["details"] = json.loads(raw["details"] or "{}")
            except (ValueError, TypeError):
                row = {"seq": None, "broken": "a field is not readable"}
            rows.append({**row, "line": number})
        return rows
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
            if not isinstance(parsed, dict):
                raise ValueError
        except ValueError:
            rows.append({"seq": None, "line": number, "broken": "not a JSON entry"})
            continue
        rows.append({**parsed, "line": number})
    return rows


# -- the window's audit page ----------------------------------------------------------


async def rows_for_window(client: Client, data_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """Every entry, newest first, and a line saying where they came from. Without a
    worker to answer, the entries of the runs still kept (no chain fields)."""
    try:
        record = await read_record(client, data_dir)
        rows = record.rows()
        note = f"{len(rows)} entries (archive {record.archive_path} and the open run)"
    except AuditError as error:
        rows = list(reversed(await entries(client, limit=10_000)))
        note = f"{error}; showing the entries of the runs still kept"
    return [{**r, "subject": r.get("target", r.get("subject"))} for r in reversed(rows)], note


def _moment(text: str, *, end: bool) -> datetime:
    """A day (YYYY-MM-DD: its start, or its end for `end`) or an ISO time, in UTC."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a day (YYYY-MM-DD) or a time (ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def concerns_member(row: dict[str, Any], member: str) -> bool:
    """The entry is about `member`: its target, a proposal of theirs, or one of the
    members a rollback reset."""
    target = str(row.get("target", row.get("subject")) or "")
    details = row.get("details") or {}
    members = details.get("members") if isinstance(details, dict) else None
    return (
        target == member
        or target.startswith(f"{member}:")
        or (isinstance(members, list) and member in members)
    )


def filter_rows(
    rows: Iterable[dict[str, Any]],
    *,
    actor: str = "",
    action: str = "",
    member: str = "",
    since: str = "",
    until: str = "",
) -> list[dict[str, Any]]:
    """The rows that match every filter given: actor and action by substring (case
    blind), member exactly, time from `since` to `until` inclusive. A bad time raises
    ValueError with a one-line reason."""
    start = _moment(since, end=False) if since.strip() else None
    stop = _moment(until, end=True) if until.strip() else None
    actor, action, member = actor.strip().lower(), action.strip().lower(), member.strip()
    found = []
    for row in rows:
        if actor and actor not in str(row.get("actor", "")).lower():
            continue
        if action and action not in str(row.get("action", "")).lower():
            continue
        if member and not concerns_member(row, member):
            continue
        if start or stop:
            try:
                at = _moment(str(row.get("at", "")), end=False)
            except ValueError:
                continue
            if (start and at < start) or (stop and at > stop):
                continue
        found.append(row)
    return found


# -- the list (histories, no worker needed) ------------------------------------------


async def entries(client: Client, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest `limit` entries, newest first, from the histories of the log's runs
    that are still kept (no worker needed; hashes are the open run's, see read_live)."""
    converter = DataConverter.default.payload_converter
    found: list[dict[str, Any]] = []
    description = await if_found(client.get_workflow_handle(AUDIT_WORKFLOW_ID).describe())
    if description is None:
        return []
    run_id: str | None = description.run_id
    while run_id and len(found) < limit:
        history = await if_found(
            client.get_workflow_handle(AUDIT_WORKFLOW_ID, run_id=run_id).fetch_history()
        )
        if history is None:
            break  # deleted by retention: the archive holds it
        run_entries = []
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                continue
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name != SIGNAL_RECORD:
                continue
            entry = converter.from_payloads(list(attrs.input.payloads), [AuditEntry])[0]
            data = dict(entry.__dict__)
            data["at"] = event.event_time.ToDatetime().isoformat() + "Z"
            data["target"] = entry.subject
            run_entries.append(data)
        found.extend(reversed(run_entries))
        start = history.events[0].workflow_execution_started_event_attributes
        run_id = start.continued_execution_run_id or None
    return found[:limit]
