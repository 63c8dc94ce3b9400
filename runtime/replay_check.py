"""Replay check: would a candidate build run the live members correctly?

Replays every live member's whole chain against the candidate code (non-determinism:
the candidate issues other commands than history recorded), and beyond that compares
the state the candidate computes from the member's events with the live state (wrong
numbers: replay alone cannot see them). One go / no-go per member and for the build.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Replayer

from recovery.damage import bounded
from recovery.history import received
from recovery.rebuild import Rebuild
from recovery.runs import as_run_applied, chain_histories, kept_from, kept_note, run_input
from runtime import deployment
from runtime.members import count_members, deployment_query, list_members
from runtime.worker import default_build_id, sandbox_runner, workflow_classes
from workflows import drill
from workflows.ids import check_build_id, member_workflow_id
from workflows.member import MemberWorkflow
from workflows.rollback_messages import COMPARED_FIELDS
from workflows.rules import MemberBook, MemberSnapshot


@dataclass
class MemberCheck:
    member_id: str
    runs: int = 0
    events: int = 0
    nondeterminism: str | None = None
    differences: dict[str, list[Any]] = field(default_factory=dict)  # field: [live, candidate]
    unchecked: str | None = None  # why the live state could not be compared
    # when its earlier runs are no longer kept (retention): checked from this run's start
    checked_from: datetime | None = None

    @property
    def note(self) -> str | None:
        """What the verdict leaves out: history the server no longer keeps."""
        return None if self.checked_from is None else kept_note(self.checked_from)

    @property
    def go(self) -> bool:
        return self.nondeterminism is None and not self.differences and self.unchecked is None


@dataclass
class ReplayReport:
    candidate: str
    drill: str | None
    members: list[MemberCheck]
    # how many members matched (the check stops at --limit): more than checked -> say so
    total: int = 0

    @property
    def go(self) -> bool:
        return all(m.go for m in self.members)

    def as_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "drill": self.drill,
            "go": self.go,
            "members": len(self.members),
            "members_total": max(self.total, len(self.members)),
            "summary": self.summary(),
            "nondeterministic": sum(1 for m in self.members if m.nondeterminism),
            "state_differs": sum(1 for m in self.members if m.differences),
            "unchecked": sum(1 for m in self.members if m.unchecked),
            "results": [
                {
                    "member_id": m.member_id,
                    "go": m.go,
                    "runs": m.runs,
                    "events": m.events,
                    "nondeterminism": m.nondeterminism,
                    "differences": m.differences,
                    "unchecked": m.unchecked,
                    "note": m.note,
                }
                for m in self.members
            ],
        }

    def summary(self) -> str:
        """The counts behind the verdict in one line, the same in the CLI and the window."""
        text = (
            f"{sum(1 for m in self.members if m.nondeterminism)} non-deterministic, "
            f"{sum(1 for m in self.members if m.differences)} with other numbers, "
            f"{sum(1 for m in self.members if m.unchecked)} unchecked, "
            f"of {len(self.members):,} members"
        )
        left = self.total - len(self.members)
        if left > 0:
            text += (
                f"; {left:,} more members were not checked (of {self.total:,}): "
                "`replay-check --limit N` checks more"
            )
        cut = sum(1 for m in self.members if m.checked_from is not None)
        if cut:
            text += f"; {cut:,} checked only from their oldest run still kept"
        return text


async def resolve_candidate(client: Client, deployment_name: str, build: str | None) -> str | None:
    """The drill bug of the candidate (None: the code installed here, unchanged)."""
    if build is not None:
        check_build_id(build)
    if build is None or build == default_build_id():
        return None
    drills = await deployment.load_drills(client, deployment_name)
    if build in drills:
        return drills[build]
    raise ValueError(
        f"the code of build {build!r} is not installed here: replay-check runs the "
        f"candidate's code, so run it from that build's installation (this one is "
        f"{default_build_id()}{', drills: ' + ', '.join(drills) if drills else ''})"
    )


def failure_reason(failure: str) -> str:
    """One line saying why replay failed: the SDK's own message (e.g. "[TMPRL1100]
    Nondeterminism error: ...") without the wrapping it comes in."""
    found = re.search(r"\[TMPRL\d+\][^\"\n]*", failure)
    return (found.group(0) if found else failure.splitlines()[0])[:300]


async def check_member(
    client: Client, replayer: Replayer, member_id: str, bug: str | None
) -> MemberCheck:
    result = MemberCheck(member_id)
    workflow_id = member_workflow_id(member_id)
    description = await client.get_workflow_handle(workflow_id).describe()
    chain = await chain_histories(client, workflow_id, run_id=description.run_id, missing_ok=True)
    result.runs = len(chain)
    result.checked_from = kept_from(chain)
    with drill.candidate(bug):
        for history in chain:
            replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if replay.replay_failure is not None:
                result.nondeterminism = failure_reason(str(replay.replay_failure))
                break
    start = run_input(chain[0])
    book = MemberBook(
        start.snapshot or MemberSnapshot(member_id=member_id), drill=drill.rules_bug(bug)
    )
    rebuild = Rebuild(book, start.requests or [])
    for history in chain:
        as_run_applied(book, history)  # each run as its build applied it
        for item in received(history, approvals=True):
            result.events += item.kind == "event"
            rebuild.apply(item, "candidate")
    handle = client.get_workflow_handle(workflow_id)
    try:
        live = await handle.query(MemberWorkflow.state)
    except RPCError as err:
        # no worker for its task queue, or the query timed out: say so, never guess
        result.unchecked = f"live state unavailable: {err.message}"
        return result
    computed = book.summary()
    result.differences = {
        k: [live[k], computed[k]] for k in COMPARED_FIELDS if live[k] != computed[k]
    }
    return result


async def replay_check(
    client: Client,
    deployment_name: str,
    build: str | None,
    *,
    query: str | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    on_checked: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """`on_checked(done, total)` after each member (and once with 0 before the first)."""
    bug = await resolve_candidate(client, deployment_name, build)
    matching = deployment_query(deployment_name, query)
    members = [row["member_id"] for row in await list_members(client, matching, limit=limit)]
    total = await count_members(client, matching) if limit and len(members) >= limit else 0
    replayer = Replayer(workflows=list(workflow_classes()), workflow_runner=sandbox_runner())
    # the drill override is process-wide: replay members one at a time per candidate
    lock = asyncio.Lock()
    done = 0
    if on_checked is not None:
        on_checked(0, len(members))

    async def one(member_id: str) -> MemberCheck:
        nonlocal done
        async with lock:
            checked = await check_member(client, replayer, member_id, bug)
        done += 1
        if on_checked is not None:
            on_checked(done, len(members))
        return checked

    checks = await bounded(members, one, concurrency)
    label = build or f"{default_build_id()} (the code installed here)"
    return ReplayReport(
        candidate=label,
        drill=bug,
        members=sorted(checks, key=lambda c: c.member_id),
        total=total,
    )
