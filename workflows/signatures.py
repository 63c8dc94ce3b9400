"""Typed references to activities a workflow calls but a worker registers elsewhere.

`workflow.execute_activity(find_damage, ...)` needs a callable whose name is the
activity's and whose annotations give the argument and result types (the result is
decoded into that type). `activity_signature` makes one without a body to keep in step:
the workflow module names the activity, its argument type and its result type once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import activity

In = TypeVar("In")
Out = TypeVar("Out")


def activity_signature(
    name: str, argument: type[In], result: type[Out], registered_by: str
) -> Callable[[In], Awaitable[Out]]:
    """The activity `name`, taking one `argument` and returning a `result`; the worker
    registers `registered_by` (a dotted path, for the reader) under the same name."""

    async def signature(input: In) -> Out:
        raise NotImplementedError(f"signature only; the worker registers {registered_by}")

    signature.__annotations__ = {"input": argument, "return": result}
    signature.__name__ = signature.__qualname__ = name.replace("-", "_")
    signature.__doc__ = f"Signature only; the worker registers `{registered_by}`."
    return activity.defn(name=name)(signature)
