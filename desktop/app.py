"""`loyalty-desk` without a subcommand: the desktop app.

Imports stay inside `run_app` so the window shows before anything slow happens; the
server, the client and the worker come up in the background on the one qasync loop.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.connect import Target

log = logging.getLogger("desktop")


def run_app(target: Target) -> int:
    """Run the app until its window is closed (or SIGINT/SIGTERM); returns the exit code."""
    import asyncio
    import signal

    import qasync
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop import preferences, theme
    from desktop.desk import Desk
    from desktop.gc_policy import GuiThreadCollector

    _configure_logging()
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    theme.apply(app, preferences.read().theme)  # names, icon, palette: before any window
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    desk = Desk(target=target)
    previous_hook = sys.excepthook
    sys.excepthook = desk.report_exception
    loop.set_exception_handler(desk.report_loop_error)
    app.aboutToQuit.connect(desk.request_shutdown)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, app.quit)

    desk.start()
    QTimer.singleShot(0, _log_window_shown)
    collector = GuiThreadCollector()
    collector.start()
    try:
        with loop:
            loop.run_forever()  # until the last window closes or a signal quits
            # aboutToQuit started the shutdown; finish it on the same loop
            loop.run_until_complete(desk.request_shutdown())
            loop.run_until_complete(_cancel_leftovers())
    finally:
        # closing the loop (end of `with`) removed its signal handlers
        collector.stop()
        sys.excepthook = previous_hook
        app.aboutToQuit.disconnect(desk.request_shutdown)
        asyncio.set_event_loop(None)
    if desk.window.relaunch_requested:
        relaunch()
    return 0


def relaunch() -> None:
    """Start the app again in this process (Settings: a new Temporal target), now that
    the worker and the embedded server have stopped."""
    log.info("relaunching: %s", " ".join(sys.argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


async def _cancel_leftovers() -> None:
    """Whatever still runs on the loop (nothing should) ends with the app."""
    import asyncio

    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leftovers:
        log.warning("cancelling a task left running at exit: %s", task.get_name())
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=5)


def _configure_logging() -> None:
    """The app logs at INFO unless LOYALTY_DESK_LOG_LEVEL says otherwise; the CLI may
    already have installed a stderr handler at its own (quieter) default."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(os.environ.get("LOYALTY_DESK_LOG_LEVEL", "INFO").upper())


def _log_window_shown() -> None:
    age = process_age()
    if age is not None:
        log.info("window shown %.2f s after the process started", age)


def process_age() -> float | None:
    """Seconds since this process started (Linux: from /proc), or None."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime_file:
            uptime = float(uptime_file.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - started)
