"""Reading member histories: the events a member received, across every run of its chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter

SIGNAL_NAMES = ("event", "events")


def received_events(history: WorkflowHistory) -> Iterator[Any]:
    """Every raw event the run received by signal, in order (bulk signals flattened)."""
    converter = DataConverter.default.payload_converter
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            continue
        attrs = event.workflow_execution_signaled_event_attributes
        if attrs.signal_name not in SIGNAL_NAMES:
            continue
        payloads = list(attrs.input.payloads)
        if not payloads:
            continue
        try:
            value = converter.from_payloads(payloads[:1])[0]
        except Exception:  # a payload nobody can decode: the workflow rejected it too
            value = None
        if attrs.signal_name == "events" and isinstance(value, list):
            yield from value
        else:
            yield value


async def chain_histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Histories of the member's runs, oldest first, following continue-as-new links."""
    runs: list[WorkflowHistory] = []
    handle = client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    runs.append(history)
    while True:
        start = history.events[0].workflow_execution_started_event_attributes
        previous = start.continued_execution_run_id
        if not previous:
            break
        history = await client.get_workflow_handle(workflow_id, run_id=previous).fetch_history()
        runs.append(history)
    runs.reverse()
    return runs
