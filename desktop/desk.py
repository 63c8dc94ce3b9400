"""The running app: one session and one main window, started in the background and
shut down exactly once."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from desktop.asyncutil import TaskSet, one_line, show_error
from desktop.main_window import MainWindow
from desktop.session import Session

if TYPE_CHECKING:
    from types import TracebackType

    from PySide6.QtCore import QUrl

    from runtime.connect import Target

log = logging.getLogger(__name__)

SHUTDOWN_CANCEL_TIMEOUT_S = 5.0


class Desk:
    """Wires the session to the window; owns the background tasks."""

    def __init__(
        self,
        *,
        target: Target,
        start_worker: bool = True,
        open_url: Callable[[QUrl], Any] | None = None,
    ) -> None:
        self.session = Session(target=target, start_worker=start_worker)
        self.window = MainWindow(session=self.session, open_url=open_url)
        self.tasks = TaskSet()
        self._shutdown: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Show the window, then bring up server, client and worker in the background."""
        self.window.show()
        return self.tasks.spawn(self._start_session(), name="session-start")

    def request_shutdown(self) -> asyncio.Task[None]:
        """Start the shutdown, or return the one already under way."""
        if self._shutdown is None:
            self._shutdown = asyncio.get_event_loop().create_task(
                self._shut_down(), name="shutdown"
            )
        return self._shutdown

    def report_exception(
        self,
        kind: type[BaseException],
        error: BaseException,
        tb: TracebackType | None,
    ) -> None:
        """sys.excepthook: an error in a slot is logged and told, never fatal."""
        log.error("unhandled error", exc_info=(kind, error, tb))
        self.window.show_message(f"Error: {one_line(error)} (details in the log)", 15_000)

    def report_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's exception handler: a failed callback or a task nobody awaited."""
        error = context.get("exception")
        message = context.get("message", "error in the event loop")
        if error is not None:
            log.error("%s", message, exc_info=error)
            text = one_line(error)
        else:
            log.error("%s", message)
            text = str(message)
        self.window.show_message(f"Error: {text} (details in the log)", 15_000)

    async def _start_session(self) -> None:
        try:
            await self.session.start()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("could not start: %s", "".join(traceback.format_exception(error)))
            what = "Temporal server" if self.session.client is None else "worker"
            self.window.show_message(f"Could not start the {what}: {one_line(error)}", 0)
            show_error(self.window, f"Could not start the {what}", error)

    async def _shut_down(self) -> None:
        log.info("shutting down")
        waits = self.window.stop()
        await self.tasks.cancel_all(SHUTDOWN_CANCEL_TIMEOUT_S)
        if waits:
            await asyncio.wait(waits, timeout=SHUTDOWN_CANCEL_TIMEOUT_S)
        try:
            await self.session.stop()
        except Exception:
            log.exception("error while stopping the worker or the server")
        log.info("shut down")
