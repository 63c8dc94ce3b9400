"""The baseline for ingest: a workflow that receives the member signals and does nothing."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.member import MAX_EVENTS_PER_RUN, MAX_SIGNALS_PER_RUN


@workflow.defn(name="NoopWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class NoopWorkflow:
    """Same signals, same continue-as-new policy, no rules, no search attributes."""

    def __init__(self) -> None:
        self._signals = 0
        self._events = 0

    @workflow.run
    async def run(self, member_id: str) -> None:
        await workflow.wait_condition(
            lambda: self._signals >= MAX_SIGNALS_PER_RUN or self._events >= MAX_EVENTS_PER_RUN
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(member_id)

    @workflow.signal(name="event")
    def event(self, raw: Any) -> None:
        self._signals += 1
        self._events += 1

    @workflow.signal(name="events")
    def events(self, raw: Any) -> None:
        self._signals += 1
        self._events += len(raw) if isinstance(raw, list) else 1

    @workflow.update(name="sync")
    def sync(self) -> int:
        return self._events


@workflow.defn(name="PlainLogWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PlainLogWorkflow:
    """The audit bench's baseline: the audit log as it was before the chain and the
    archive (same signal, same entries, same continue-as-new), counting what it got."""

    def __init__(self) -> None:
        self._entries: list[Any] = []
        self._before = 0

    @workflow.run
    async def run(self, before: int, per_run: int) -> None:
        self._before = before
        await workflow.wait_condition(lambda: len(self._entries) >= per_run)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(args=[self._before + len(self._entries), per_run])

    @workflow.signal(name="record")
    def record(self, entry: Any) -> None:
        entry["at"] = workflow.now().isoformat().replace("+00:00", "Z")
        self._entries.append(entry)

    @workflow.query(name="count")
    def count(self) -> int:
        return self._before + len(self._entries)
