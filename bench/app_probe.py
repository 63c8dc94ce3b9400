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

- `previewed SECONDS AFFECTED`: after `preview BUILD DEPLOYMENT`, the rollback
  preview of BUILD's damage to DEPLOYMENT's members ran in the app as the wizard runs
  it (runtime.releases.preview_rollback on the app's loop) and filled the wizard's
  tables;
- `replayed SECONDS MEMBERS VERDICT`: after `replay`, the Releases panel's replay
  check of the app's own members (the code installed here) finished.

Commands, one a line on stdin: `scroll`, `preview BUILD DEPLOYMENT`, `replay`, `quit`.
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
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        name, *args = command.split() or [""]
        if name == "scroll":
            self._spawn(scroll_to_end())
        elif name == "preview" and len(args) == 2:
            self._spawn(preview(*args))
        elif name == "replay":
            self._spawn(replay_check())
        elif name == "quit":
            app = QApplication.instance()
            if app is not None:
                app.quit()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_event_loop().create_task(_reporting(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _reporting(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except Exception as error:  # the benchmark waits for a line: give it one
        say(f"error {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")


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


async def preview(build: str, deployment: str) -> None:
    """The wizard's step from "choose the bad build" to its preview, in the app."""
    from runtime.members import deployment_query
    from runtime.releases import preview_rollback

    window = main_window()
    assert window is not None and window.session.client is not None
    wizard = window.releases.wizard
    started = time.monotonic()
    report = await preview_rollback(
        window.session.client,
        build,
        deployment_query(deployment),
        task_queue=window.session.target.task_queue,
    )
    wizard.affected_model.set_records(report.members)
    wizard.preview_model.set_records(report.members)
    await asyncio.sleep(0)
    say(f"previewed {time.monotonic() - started:.3f} {report.affected}")


async def replay_check() -> None:
    """The Releases panel's replay check of the code installed here."""
    window = main_window()
    assert window is not None
    releases = window.releases
    started = time.monotonic()
    await releases.run_replay_check(None)
    verdict = releases.verdict_label.text().split(" ", 1)[0]
    say(f"replayed {time.monotonic() - started:.3f} {releases.replay_model.rowCount()} {verdict}")


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
