"""Heavy modules imported once, on a thread of their own, before the GUI thread needs them.

Importing the approval queue or the rollback code pulls in the OpenAI Agents SDK,
pydantic models by the thousand and the workflows: about 1.5 s of processor time. On
the GUI thread that is a frozen window; a panel instead awaits `ready(...)`, which
imports on the preload thread while the event loop keeps running (the importing
thread gives the interpreter lock back every few milliseconds). All imports go
through one thread, so two panels never wait on each other's half-imported module.
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import Future, ThreadPoolExecutor

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preload")
_imports: dict[str, Future[object]] = {}


def start(*names: str) -> None:
    """Begin importing `names` in the background (in order); returns at once."""
    for name in names:
        if name not in _imports:
            _imports[name] = _executor.submit(importlib.import_module, name)


async def ready(*names: str) -> None:
    """Until every module of `names` is imported (started here if need be); an import
    error is raised here, as the import itself would have."""
    start(*names)
    for name in names:
        await asyncio.shield(asyncio.wrap_future(_imports[name]))
