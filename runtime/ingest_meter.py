"""How many member events this worker is taking in right now, so agent runs can yield.

Agent runs are background work: an agent run costs the server and the worker about as
much as fifteen ordinary events (a child workflow, its model call, its result). While
the worker ingests faster than `AgentPolicy.yield_events_per_s`, members hold their
agent runs back (a durable timer, backing off, for at most `yield_max_seconds`), so a
burst of traffic is applied first and the agent catches up after it.

A workflow interceptor counts `event`/`events` signals as they are handled (never on
replay); the agent-settings activity reports the rate, and the member's decision is
that activity's recorded result, so replay stays deterministic.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from temporalio import workflow
from temporalio.worker import (
    HandleSignalInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

SIGNALS = {"event": False, "events": True}  # name -> carries a list
WINDOW_S = 2


class IngestMeter:
    """Events per second over the last WINDOW_S whole seconds; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[int, int] = {}

    def add(self, events: int, now: float | None = None) -> None:
        second = int(now if now is not None else time.monotonic())
        with self._lock:
            self._buckets[second] = self._buckets.get(second, 0) + events
            if len(self._buckets) > 4 * WINDOW_S:
                for old in [s for s in self._buckets if s < second - 2 * WINDOW_S]:
                    del self._buckets[old]

    def rate(self, now: float | None = None) -> float:
        second = int(now if now is not None else time.monotonic())
        with self._lock:
            total = sum(self._buckets.get(second - i, 0) for i in range(1, WINDOW_S + 1))
        return total / WINDOW_S


class IngestMeterInterceptor(Interceptor):
    def __init__(self, meter: IngestMeter) -> None:
        self.meter = meter

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        meter = self.meter

        class _Counting(WorkflowInboundInterceptor):
            async def handle_signal(self, input: HandleSignalInput) -> None:
                carries_list = SIGNALS.get(input.signal)
                if carries_list is not None and not workflow.unsafe.is_replaying():
                    first: Any = input.args[0] if input.args else None
                    meter.add(len(first) if carries_list and isinstance(first, list) else 1)
                await super().handle_signal(input)

        return _Counting
