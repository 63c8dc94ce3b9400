"""Coroutines in a Qt app on the qasync loop: owned tasks, async slots, awaited dialogs.

- Every task has a strong reference until it ends (the loop keeps only weak ones).
- An async slot runs its coroutine as a task; a second call cancels the first run
  (a refresh replaces the one before) or, for periodic work, is skipped.
- Errors are logged and shown: in a dialog opened with `open()` (a nested `exec()`
  inside a coroutine would re-enter the event loop) or in the status bar.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMainWindow, QMessageBox, QWidget

log = logging.getLogger(__name__)

T = TypeVar("T")
Overlap = Literal["restart", "skip"]
ErrorDisplay = Literal["dialog", "status"]
SlotCoroutine = Callable[..., Coroutine[Any, Any, Any]]

_SLOT_TASKS = "_async_slot_tasks"


class TaskSet:
    """Tasks we started and still hold on to; `cancel_all` at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self, coroutine: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> asyncio.Task[T]:
        task = asyncio.get_event_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_all(self, timeout: float = 5.0) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


def async_slot(
    *, overlap: Overlap = "restart", errors: ErrorDisplay = "dialog", title: str | None = None
) -> Callable[[SlotCoroutine], Callable[..., asyncio.Task[Any]]]:
    """Make an `async def` method usable as a Qt slot.

    Calling it starts the coroutine as a task and returns the task. `overlap` says
    what a call does while the previous run goes on: "restart" cancels it, "skip"
    returns it. Extra arguments a signal passes (e.g. `clicked(bool)`) are dropped
    when the method does not take them.
    """

    def decorate(method: SlotCoroutine) -> Callable[..., asyncio.Task[Any]]:
        accepted = _positional_count(method) - 1  # without self
        slot_name = method.__name__
        heading = title or _humanize(slot_name)

        @functools.wraps(method)
        def start(owner: Any, *args: Any) -> asyncio.Task[Any]:
            tasks: dict[str, asyncio.Task[Any]] = owner.__dict__.setdefault(_SLOT_TASKS, {})
            running: set[asyncio.Task[Any]] = owner.__dict__.setdefault(f"{_SLOT_TASKS}_all", set())
            previous = tasks.get(slot_name)
            if previous is not None and not previous.done():
                if overlap == "skip":
                    return previous
                previous.cancel()
            if accepted >= 0:
                args = args[:accepted]
            task = asyncio.get_event_loop().create_task(
                method(owner, *args), name=f"{type(owner).__name__}.{slot_name}"
            )
            tasks[slot_name] = task
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(functools.partial(_report_failure, owner, heading, errors))
            return task

        return start

    return decorate


def running_slot_tasks(owner: Any) -> list[asyncio.Task[Any]]:
    """The async slots of `owner` still running (to await, not to cancel)."""
    running: set[asyncio.Task[Any]] = owner.__dict__.get(f"{_SLOT_TASKS}_all", set())
    return [t for t in running if not t.done()]


def cancel_slot_tasks(owner: Any) -> list[asyncio.Task[Any]]:
    """Cancel every running async slot of `owner`; returns the tasks to await."""
    running: set[asyncio.Task[Any]] = owner.__dict__.get(f"{_SLOT_TASKS}_all", set())
    tasks = [t for t in running if not t.done()]
    for task in tasks:
        task.cancel()
    return tasks


def show_error(parent: QWidget | None, title: str, error: BaseException | str) -> QMessageBox:
    """A non-modal-to-the-loop error dialog: opened, never exec()-ed."""
    text = error if isinstance(error, str) else (one_line(error) or type(error).__name__)
    box = QMessageBox(
        QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Close, parent
    )
    if isinstance(error, BaseException):
        details = "".join(traceback.format_exception(error)).strip()
        # ServerError and WorkerError carry the end of the child's log: its last line
        # is usually the real cause
        log_tail = str(getattr(error, "log_tail", "") or "").strip()
        if log_tail:
            box.setInformativeText(log_tail.splitlines()[-1])
        box.setDetailedText(f"{details}\n\n{log_tail}".strip())
    box.setObjectName("errorDialog")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box


async def run_dialog(dialog: QDialog) -> int:
    """Open `dialog` and wait for its result without a nested event loop."""
    done: asyncio.Future[int] = asyncio.get_event_loop().create_future()

    def finished(result: int) -> None:
        if not done.done():
            done.set_result(result)

    dialog.finished.connect(finished)
    dialog.open()
    try:
        return await done
    finally:
        dialog.finished.disconnect(finished)


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float, interval: float = 0.05
) -> None:
    """Poll `predicate` until true; TimeoutError after `timeout` seconds."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def _report_failure(owner: Any, title: str, errors: ErrorDisplay, task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is None:
        return
    log.error("%s failed", task.get_name(), exc_info=error)
    widget = owner if isinstance(owner, QWidget) else None
    window = widget.window() if widget is not None else None
    if errors == "status" and isinstance(window, QMainWindow):
        window.statusBar().showMessage(f"{title} failed: {one_line(error)}", 15_000)
        return
    show_error(window, title, error)


def one_line(error: BaseException) -> str:
    """The first line of an error for a status bar or a message: its `reason` if it
    carries one (ServerError, WorkerError, EventError), else its text, else its type."""
    reason = getattr(error, "reason", None)
    text = str(reason or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _positional_count(function: Callable[..., Any]) -> int:
    """How many positional arguments `function` takes; -1 when it takes *args."""
    count = 0
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind == parameter.VAR_POSITIONAL:
            return -1
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _humanize(slot_name: str) -> str:
    words = slot_name.removeprefix("_on_").removeprefix("_").replace("_", " ")
    return words[:1].upper() + words[1:]
