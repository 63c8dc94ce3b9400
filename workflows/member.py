"""MemberWorkflow: one perpetual entity workflow per loyalty-program member.

Public contract (see README): id `member-<member_id>`, started by signal-with-start;
signal `event` (one event object), signal `events` (a list), query `state`, update
`adjust` (manual adjustment with a reason).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from workflows import drill, search_attributes
    from workflows.rules import MemberBook, MemberSnapshot

WORKFLOW_ID_PREFIX = "member-"
# Continue-as-new after this many received signals (duplicates included) or events
# (bulk signals carry many), so history and replay cost stay bounded per run.
MAX_SIGNALS_PER_RUN = 500
MAX_EVENTS_PER_RUN = 5_000
SIGNAL_EVENT = "event"
SIGNAL_EVENTS = "events"
REQUESTS_KEEP = 256
# search attributes (what the members table shows) lag the state by at most this much
PUBLISH_INTERVAL = timedelta(seconds=1)


def member_workflow_id(member_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{member_id}"


@dataclass
class MemberInput:
    member_id: str
    snapshot: MemberSnapshot | None = None
    # idempotency keys of recent adjustments, carried across runs
    requests: list[str] | None = None
    # continue-as-new thresholds; set at the first start and carried across runs
    max_signals: int = MAX_SIGNALS_PER_RUN
    max_events: int = MAX_EVENTS_PER_RUN


@dataclass
class Adjustment:
    points: int
    reason: str
    actor: str
    request_id: str


@dataclass
class AdjustmentResult:
    applied: bool
    points: int
    ledger_seq: int
    message: str


@workflow.defn(name="MemberWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class MemberWorkflow:
    @workflow.init
    def __init__(self, input: MemberInput) -> None:
        snapshot = input.snapshot or MemberSnapshot(member_id=input.member_id)
        self._book = MemberBook(snapshot)
        self._requests: dict[str, int] = dict.fromkeys(input.requests or [], 0)
        self._signals = 0
        self._events = 0
        self._published: dict[str, Any] = {}
        self._published_at: datetime | None = None
        self._dirty = True
        self._limits = (max(1, input.max_signals), max(1, input.max_events))

    @workflow.run
    async def run(self, input: MemberInput) -> None:
        expiry = asyncio.create_task(self._expire_when_inactive())
        while True:
            await workflow.wait_condition(lambda: self._dirty or self._should_continue())
            if self._dirty and not self._should_continue():
                await self._publish_soon()
            if self._should_continue():
                self._publish()
                # signal handlers apply events synchronously, so once every update
                # handler finished nothing received is left unapplied
                await workflow.wait_condition(workflow.all_handlers_finished)
                expiry.cancel()
                self._book.s.runs += 1
                workflow.continue_as_new(
                    MemberInput(
                        member_id=self._book.member_id,
                        snapshot=self._book.s,
                        requests=list(self._requests)[-REQUESTS_KEEP:],
                        max_signals=self._limits[0],
                        max_events=self._limits[1],
                    )
                )

    def _should_continue(self) -> bool:
        return (
            self._signals >= self._limits[0]
            or self._events >= self._limits[1]
            or workflow.info().is_continue_as_new_suggested()
        )

    def _build(self) -> str:
        version = workflow.info().get_current_deployment_version()
        build = version.build_id if version else "unversioned"
        self._book.drill = drill.drill_for(build)
        return build

    # -- signals --------------------------------------------------------------

    @workflow.signal(name="event")
    def event(self, raw: Any) -> None:
        self._signals += 1
        self._events += 1
        self._book.apply(raw, build_id=self._build(), received_at=workflow.now())
        self._dirty = True

    @workflow.signal(name="events")
    def events(self, raw: Any) -> None:
        self._signals += 1
        self._dirty = True
        if not isinstance(raw, list):
            self._book.reject(None, "the events signal takes a JSON list of event objects")
            return
        self._events += len(raw)
        build, now = self._build(), workflow.now()
        for item in raw:
            self._book.apply(item, build_id=build, received_at=now)

    # -- updates --------------------------------------------------------------

    @workflow.update(name="adjust")
    def adjust(self, request: Adjustment) -> AdjustmentResult:
        if request.request_id in self._requests:
            return AdjustmentResult(
                False, self._book.s.points, self._requests[request.request_id], "already applied"
            )
        entry = self._book.adjust(
            request.points, f"{request.reason} (by {request.actor})", workflow.now(), self._build()
        )
        self._requests[request.request_id] = entry["seq"]
        self._dirty = True
        return AdjustmentResult(True, self._book.s.points, entry["seq"], "applied")

    @adjust.validator
    def _validate_adjust(self, request: Adjustment) -> None:
        if request.request_id in self._requests:
            return  # a retry: accepted, answered with the first result
        problem = self._book.check_adjustment(request.points, request.reason)
        if problem is None and not request.actor.strip():
            problem = "the actor (who makes the adjustment) is required"
        if problem:
            raise ValueError(problem)

    @workflow.update(name="sync")
    def sync(self) -> dict[str, Any]:
        """The state after every signal sent before this call has been applied."""
        return self.state()

    # -- queries --------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> dict[str, Any]:
        summary = self._book.summary()
        version = workflow.info().get_current_deployment_version()
        summary["build_id"] = version.build_id if version else "unversioned"
        summary["drill"] = drill.drill_for(summary["build_id"])
        summary["run_signals"] = self._signals
        return summary

    # -- internals ------------------------------------------------------------

    async def _expire_when_inactive(self) -> None:
        """Durable inactivity timer.

        Only armed while the deadline lies ahead of workflow time: a member fed
        historical events expires by event time alone, so the same events always
        give the same state.
        """
        while True:
            deadline = self._book.expiry_deadline()
            if deadline is None or deadline <= workflow.now():
                await workflow.wait_condition(
                    lambda old=deadline: self._book.expiry_deadline() != old  # type: ignore[misc]
                )
                continue
            await workflow.sleep(deadline - workflow.now() + timedelta(seconds=1))
            if self._book.expire_if_due(workflow.now(), self._build()):
                self._dirty = True

    async def _publish_soon(self) -> None:
        """Publish at most once per PUBLISH_INTERVAL while events stream in.

        A member that hears from its rider now and then publishes at once; a busy
        one batches a second of changes into one upsert instead of one per event.
        """
        since = workflow.now() - self._published_at if self._published_at else None
        if since is not None and since < PUBLISH_INTERVAL:
            try:
                await workflow.wait_condition(
                    self._should_continue, timeout=PUBLISH_INTERVAL - since
                )
            except TimeoutError:
                pass
        self._publish()

    def _publish(self) -> None:
        """Upsert the search attributes the members table filters on, when they change."""
        s = self._book.s
        drill_bug = self._book.drill or ""
        wanted: dict[str, Any] = {
            "tier": s.tier,
            "points": s.points,
            "last": s.watermark,
            "drill": drill_bug,
        }
        updates: list[SearchAttributeUpdate[Any]] = []
        if wanted["tier"] != self._published.get("tier"):
            updates.append(search_attributes.TIER.value_set(s.tier))
        if wanted["points"] != self._published.get("points"):
            updates.append(search_attributes.POINTS.value_set(s.points))
        if wanted["last"] != self._published.get("last") and self._book.last_event_at:
            updates.append(search_attributes.LAST_EVENT_AT.value_set(self._book.last_event_at))
        if wanted["drill"] != self._published.get("drill", ""):
            updates.append(search_attributes.DRILL.value_set(drill_bug))
        if updates:
            workflow.upsert_search_attributes(updates)
        self._published = wanted
        self._published_at = workflow.now()
        self._dirty = False
