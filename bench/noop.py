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
