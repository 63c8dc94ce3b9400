"""Two fixes around the Agents SDK and its Temporal plugin (openai-agents 0.22,
temporalio-openai-agents 1.1), applied by the worker.

1. `AgentsPayloadConverter`: the plugin's pydantic payload converter with one
   TypeAdapter cache for the whole process. Every workflow instance builds its own
   payload converter, so the converter's per-instance cache starts empty for every
   workflow, and building an adapter (MemberInput, ModelResponse, ...) costs
   milliseconds each time: most of an agent run's CPU and part of every member start.

2. A guard for agent runs that a stopping worker leaves behind.

When a worker stops, the workflows in its cache are dropped, not unwound: a suspended
agent run (waiting for its model activity) is closed later by the garbage collector,
on whatever thread and in whatever `contextvars.Context` is current then. Three
context managers in the Agents SDK's run loop reset a ContextVar token on the way out,
which raises `ValueError: ... was created in a different Context` from inside the
finalizer. Harmless in itself (the run is gone; another worker resumes it from
history), but an exception raised by a finalizer that runs in the middle of
`ast.parse` trips a CPython 3.11 bug ("AST constructor recursion depth mismatch") in
whatever happens to be parsing at that moment, e.g. pytest's assertion rewriting.

The replacements below do exactly what the originals do, except that a reset from a
foreign Context is skipped: that Context is being thrown away anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import TypeAdapter
from temporalio.openai_agents import OpenAIPayloadConverter

_installed = False
_ADAPTERS = functools.lru_cache(maxsize=2_048)(TypeAdapter)


class AgentsPayloadConverter(OpenAIPayloadConverter):
    """OpenAIPayloadConverter whose JSON converter shares the process-wide adapter cache."""

    def __init__(self) -> None:
        super().__init__()
        json_converter = self.converters.get(b"json/plain")
        if json_converter is not None and hasattr(json_converter, "_type_adapter"):
            json_converter._type_adapter = _ADAPTERS


@contextmanager
def _set(var: ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        try:
            var.reset(token)
        except ValueError:
            pass  # finalized by the garbage collector in another Context


def install() -> None:
    """Idempotent; leaves the SDK alone if its internals moved (then nothing matches)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from agents.models import _retry_runtime, _run_context
        from agents.run_internal import model_retry, run_loop
    except ImportError:
        return
    owner_var = getattr(_run_context, "_MODEL_RUN_OWNER", None)
    provider = getattr(_retry_runtime, "_DISABLE_PROVIDER_MANAGED_RETRIES", None)
    websocket = getattr(_retry_runtime, "_DISABLE_WEBSOCKET_PRE_EVENT_RETRIES", None)
    if owner_var is not None and hasattr(run_loop, "model_run_context"):

        def model_run_context(owner: object) -> Any:
            return _set(owner_var, owner)

        run_loop.model_run_context = model_run_context
    if provider is not None and hasattr(model_retry, "provider_managed_retries_disabled"):

        def provider_managed_retries_disabled(disabled: bool) -> Any:
            return _set(provider, disabled)

        model_retry.provider_managed_retries_disabled = provider_managed_retries_disabled
    _tolerant_trace_scope()
    if websocket is not None and hasattr(model_retry, "websocket_pre_event_retries_disabled"):

        def websocket_pre_event_retries_disabled(disabled: bool) -> Any:
            return _set(websocket, disabled)

        model_retry.websocket_pre_event_retries_disabled = websocket_pre_event_retries_disabled


def _tolerant_trace_scope() -> None:
    """The run's trace scope resets its ContextVars the same way (even with tracing off)."""
    try:
        from agents.tracing import scope
    except ImportError:
        return
    for method, var_name in (
        ("reset_current_span", "_current_span"),
        ("reset_current_trace", "_current_trace"),
    ):
        var = getattr(scope, var_name, None)
        if var is None or not hasattr(scope.Scope, method):
            continue

        def reset(cls: Any, token: Any, _var: ContextVar[Any] = var) -> None:
            try:
                _var.reset(token)
            except ValueError:
                pass  # finalized by the garbage collector in another Context

        setattr(scope.Scope, method, classmethod(reset))
