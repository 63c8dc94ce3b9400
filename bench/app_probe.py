"""The desktop app as people run it (`run_app`), with probes for bench.desktop.

It runs in its own process, started by the benchmark, and reports on stdout, one line
each, times on the system-wide monotonic clock (comparable across processes):

- `usable T`: the window is shown and its members table holds rows from the server;
- `worker T`: the app's own worker process is running;
- `gc T CPU_MS GENERATION`: a garbage collection on the GUI thread took CPU_MS;
- `lag T LATE_MS THREAD_MS PROCESS_MS`: a tick of the loop-lag probe came LATE_MS
  after it was due; in between, the GUI thread used THREAD_MS of processor time and
  the whole process PROCESS_MS. THREAD_MS close to LATE_MS: our code on the GUI
  thread held the loop; PROCESS_MS well above THREAD_MS: another thread of the app
  ran (and may have held the GIL); both far below: the process waited for a
  processor (other work on the machine);
- `scrolled SECONDS ROWS TOTAL FIRST EARLY LATE`: after the `scroll` command, the
  members table was loaded afresh and scrolled to its last row, page by page, as a
  user dragging the scroll bar to the end would; FIRST is the seconds to the first
  page, EARLY and LATE the median seconds the first and last ten pages took to read
  from the server (query and decoding).

Commands, one a line on stdin: `scroll`, `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    from desktop.main_window import MainWindow
    from desktop.members_loader import MembersSource
    from desktop.members_store import Row

TICK_MS = 5
REPORT_LATE_MS = 2.0  # below this a tick is on time; not worth a line
REPORT_GC_MS = 5.0


class Probe(QObject):
    """Loop lag, the moment the app becomes usable, and the scroll command.

    Signals:
        command_received(text): a line from stdin (emitted from the reader thread,
            delivered on the GUI thread).
    """

    command_received = Signal(str)

    def __init__(self, *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._usable = False
        self._worker_running = False
        self._gc_started = 0.0
        self._last = time.monotonic()
        self._last_cpu = time.thread_time()
        self._last_process = time.process_time()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.command_received.connect(self._on_command_received)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._last, self._last_cpu = time.monotonic(), time.thread_time()
        self._last_process = time.process_time()
        self._timer.start()
        threading.Thread(target=self._read_commands, daemon=True).start()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """A garbage collection on the GUI thread holds the loop too: report the long ones."""
        if threading.current_thread() is not threading.main_thread():
            return
        if phase == "start":
            self._gc_started = time.thread_time()
        elif (spent := (time.thread_time() - self._gc_started) * 1000) >= REPORT_GC_MS:
            say(f"gc {time.monotonic():.4f} {spent:.1f} {info['generation']}")

    def _read_commands(self) -> None:
        for line in sys.stdin:
            self.command_received.emit(line.strip())

    def _on_timer_timeout(self) -> None:
        now, cpu, process = time.monotonic(), time.thread_time(), time.process_time()
        late_ms = (now - self._last) * 1000 - TICK_MS
        if late_ms >= REPORT_LATE_MS:
            thread_ms = (cpu - self._last_cpu) * 1000
            process_ms = (process - self._last_process) * 1000
            say(f"lag {now:.4f} {late_ms:.1f} {thread_ms:.1f} {process_ms:.1f}")
        self._last, self._last_cpu, self._last_process = now, cpu, process
        if not self._usable or not self._worker_running:
            window = main_window()
            if window is None:
                return
            if not self._usable and window.isVisible() and window.members.model.rowCount():
                self._usable = True
                say(f"usable {now:.4f}")
            if not self._worker_running and window.session.worker_state == "running":
                self._worker_running = True
                say(f"worker {now:.4f}")

    def _on_command_received(self, command: str) -> None:
        if command == "scroll":
            task = asyncio.get_event_loop().create_task(scroll_to_end())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif command == "quit":
            app = QApplication.instance()
            if app is not None:
                app.quit()


class TimedSource:
    """The app's visibility source, timing the pages scrolling reads (query and decoding);
    first pages (token None: a load or a refresh) are not among them."""

    def __init__(self, source: MembersSource) -> None:
        self._source = source
        self.pages: list[float] = []

    async def page(
        self, query: str | None, token: bytes | None, size: int
    ) -> tuple[list[Row], bytes | None]:
        started = time.monotonic()
        try:
            return await self._source.page(query, token, size)
        finally:
            if token is not None:
                self.pages.append(time.monotonic() - started)

    async def count(self, query: str | None) -> int:
        return await self._source.count(query)


async def scroll_to_end() -> None:
    """Load the table afresh (what connecting does) and scroll until its last row shows."""
    from desktop.members_loader import TemporalMembersSource

    window = main_window()
    assert window is not None and window.session.client is not None
    panel = window.members
    store, table = panel.model.store, panel.table
    source = TimedSource(TemporalMembersSource(client=window.session.client))
    started = time.monotonic()
    await panel.set_source(source)
    first_page = time.monotonic() - started
    while store.more_available or store.loading:
        if not store.loading:
            table.scrollToBottom()  # at the end: the view asks the model to fetch more
        await asyncio.sleep(0.001)
    table.scrollToBottom()
    await asyncio.sleep(0)
    last_shown = table.rowAt(table.viewport().height() - 1)
    seconds = time.monotonic() - started
    loader = panel.loader
    total = loader.total if loader else None
    if last_shown != len(store) - 1:
        say(f"error the last row shown is {last_shown}, not {len(store) - 1}")
    early = statistics.median(source.pages[:10]) if source.pages else 0.0
    late = statistics.median(source.pages[-10:]) if source.pages else 0.0
    say(f"scrolled {seconds:.3f} {len(store)} {total} {first_page:.3f} {early:.3f} {late:.3f}")


def main_window() -> MainWindow | None:
    from desktop.main_window import MainWindow

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return None
    return next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True, type=Path)
    args = parser.parse_args()

    from runtime import cli

    app = QApplication(sys.argv)
    probe = Probe(parent=app)
    QTimer.singleShot(0, probe.start)  # once the app's loop runs
    return cli.main(["--data-dir", str(args.data_dir)])  # the app, as `loyalty-desk` runs it


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # as runtime.cli.entry: the SDK's native threads can crash finalization
