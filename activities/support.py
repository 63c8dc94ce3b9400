"""What several activities need alike: heartbeats while an attempt waits, and reading a
settings workflow's memo (the effect destinations, the agent's guardrails) without a
worker having to answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from temporalio import activity
from temporalio.client import Client

from recovery.found import if_found

HEARTBEAT_EVERY_S = 2.0


@contextlib.asynccontextmanager
async def heartbeating(
    interval_s: float = HEARTBEAT_EVERY_S, details: Callable[[], Any] | None = None
) -> AsyncIterator[None]:
    """Heartbeat while the body runs, so a killed worker's attempt is given up after the
    heartbeat timeout rather than after the whole start-to-close timeout; each beat
    carries `details()` when given (how far the attempt is, for whoever describes it)."""

    async def beat() -> None:
        while True:
            activity.heartbeat(*(() if details is None else (details(),)))
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def memo_of(client: Client, workflow_id: str) -> Mapping[str, Any] | None:
    """The memo of workflow `workflow_id`; None when no such workflow was ever started."""
    description = await if_found(client.get_workflow_handle(workflow_id).describe())
    return None if description is None else await description.memo()
