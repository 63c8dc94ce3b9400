"""A request about one workflow or run that may not exist (never started, or no longer
kept): None in place of the server's NOT_FOUND. Here, the lowest layer that talks to the
server, so that recovery, the activities and the front ends ask the same way."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")


async def if_found(call: Awaitable[T]) -> T | None:
    """What `call` answers; None when the server has no such workflow or run."""
    try:
        return await call
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
