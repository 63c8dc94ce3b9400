"""The member workflow's inbox: events received by signal, applied in order within each
workflow task's budget (BOUNDED_PATCH), and payloads no converter can read recorded
as rejections.

A mixin of `workflows.member.MemberWorkflow` (the state it reads is the workflow's)."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    RawValue,
)
from temporalio.converter import DataConverter

with workflow.unsafe.imports_passed_through():
    from workflows.agent_desk import AgentDesk
    from workflows.member_messages import (
        DRAIN_PAUSE,
        DRAIN_SUMMARY,
        MAX_EVENTS_PER_TASK,
    )
    from workflows.rules import MemberBook


_UNDECODABLE = object()  # a signal payload no converter can read
# an event of an events signal that the worker's converter cannot carry (PER_EVENT_PATCH)
_UNREADABLE_EVENT = "unreadable event in an events signal (not valid JSON text for the worker)"
_PLAIN_JSON = DataConverter.default.payload_converter
_UNREADABLE = object()  # its mark in the signal's list of events


class _Received:
    """A signal in the inbox: its payload, decoded when its turn comes."""

    __slots__ = ("bulk", "error", "items", "payload", "position", "received_at")

    def __init__(self, payload: RawValue, received_at: datetime, *, bulk: bool) -> None:
        self.payload = payload
        self.received_at = received_at
        self.bulk = bulk
        self.items: list[Any] | None = None
        self.error: str | None = None  # a payload that is no event: its rejection
        self.position = 0


class MemberInbox:
    """The member's inbox of received events (see the module)."""

    _book: MemberBook
    _desk: AgentDesk
    _dirty: bool
    _signals: int
    _events: int
    _inbox: deque[_Received]
    _budget_task: int
    _budget_left: int
    _per_event: bool

    if TYPE_CHECKING:

        def _build(self) -> str: ...

    def _receive(self, signal: _Received) -> None:
        """A signal's events apply at once while this task's budget lasts and nothing
        waits before them (updates in the same task then see them, as before the
        bound); otherwise they wait in the inbox, in order.

        recovery.history._Reader decides the same way: keep the two in step."""
        self._signals += 1
        self._dirty = True
        if not self._inbox and self._decode(signal) <= self._budget():
            self._apply_from(signal, self._budget())
        else:
            self._inbox.append(signal)

    async def _drain_inbox(self) -> None:
        """Apply queued events, within each workflow task's budget, in order."""
        while True:
            await workflow.wait_condition(lambda: bool(self._inbox))
            while self._inbox and self._budget() > 0:
                head = self._inbox[0]
                self._decode(head)
                self._apply_from(head, self._budget())
                if head.items is None or head.position >= len(head.items):
                    self._inbox.popleft()
            if self._inbox:
                await workflow.sleep(DRAIN_PAUSE, summary=DRAIN_SUMMARY)

    def _budget(self) -> int:
        """Events this workflow task may still apply (MAX_EVENTS_PER_TASK per task)."""
        task = workflow.info().get_current_history_length()
        if task != self._budget_task:
            self._budget_task, self._budget_left = task, MAX_EVENTS_PER_TASK
        return self._budget_left

    def _decode(self, signal: _Received) -> int:
        """Decode the signal's payload once; what applying all of it costs: its events, or
        1 for a payload that is no event (it becomes one rejection)."""
        if signal.items is None and signal.error is None:
            raw = self._decoded_quietly(signal.payload)
            if raw is _UNDECODABLE and signal.bulk and self._per_event:
                raw = self._read_one_by_one(signal.payload)
            if raw is _UNDECODABLE:
                signal.error = "undecodable"
            elif signal.bulk and not isinstance(raw, list):
                signal.error = "the events signal takes a JSON list of event objects"
            else:
                signal.items = raw if signal.bulk else [raw]
        return 1 if signal.items is None else len(signal.items) - signal.position

    def _apply_from(self, signal: _Received, budget: int) -> None:
        """Apply up to `budget` of the signal's events from where it stopped."""
        if signal.items is None:
            if signal.error == "undecodable":
                self._decoded(signal.payload)  # records the rejection with its reason
            elif signal.error:
                self._book.reject(None, signal.error)
            self._budget_left -= 1
            return
        build = self._build()
        take = signal.items[signal.position : signal.position + budget]
        for item in take:
            if item is _UNREADABLE:
                self._book.reject(None, _UNREADABLE_EVENT)
                continue
            outcome = self._book.apply(item, build_id=build, received_at=signal.received_at)
            self._desk.observe(outcome, self._book, signal.received_at)
            for released in self._book.released:
                self._desk.observe(released, self._book, signal.received_at)
        self._events += len(take)
        signal.position += len(take)
        self._budget_left -= len(take)
        self._dirty = True

    def _read_one_by_one(self, payload: RawValue) -> Any:
        """An events payload the worker's converter refused as a whole, read with plain
        JSON: its list, each event the worker's converter cannot carry (into the state,
        the history, a query's answer) replaced by a mark that becomes its rejection."""
        try:
            raw = _PLAIN_JSON.from_payload(payload.payload)
        except Exception:
            return _UNDECODABLE
        if not isinstance(raw, list):
            return raw
        converter = workflow.payload_converter()

        def readable(item: Any) -> bool:
            try:
                converter.from_payload(converter.to_payload(item))
            except Exception:
                return False
            return True

        return [item if readable(item) else _UNREADABLE for item in raw]

    def _decoded_quietly(self, payload: RawValue) -> Any:
        try:
            return workflow.payload_converter().from_payload(payload.payload)
        except Exception:
            return _UNDECODABLE

    def _decoded(self, payload: RawValue) -> Any:
        """The signal's value; bytes no converter can read are a recorded rejection.

        Taken raw because the SDK would otherwise drop such a signal with only a log line
        on the worker, while the history (which rollback replays) still holds it.
        """
        try:
            return workflow.payload_converter().from_payload(payload.payload)
        except Exception as error:  # bad JSON, not UTF-8, unknown encoding, 5,000 digits
            encoding = payload.payload.metadata.get("encoding", b"").decode(errors="replace")
            reason = (
                f"unreadable signal payload ({encoding or 'no encoding'}, {type(error).__name__})"
            )
            self._book.reject(None, reason)
            return _UNDECODABLE
