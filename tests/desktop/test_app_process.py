"""`loyalty-desk` (no subcommand) as people run it: one process with a window, an
embedded server and a worker; nothing survives it, however it ends."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.desktop.conftest import process_gone

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 90


class App:
    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LOYALTY_DESK_LOG_LEVEL="INFO")
        env.pop("LOYALTY_DESK_ADDRESS", None)
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = READY_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def children(self) -> dict[str, int]:
        worker = self.wait_for(r"worker pid (\d+) running build")
        server = json.loads((self.data_dir / "server.json").read_text())
        return {"worker": int(worker.group(1)), "server": int(server["pid"])}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = App(tmp_path / "data")
    yield app
    if app.process.poll() is None:
        app.process.kill()
        app.process.wait()


def wait_gone(pids: dict[str, int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(process_gone(pid) for pid in pids.values()):
            return
        time.sleep(0.05)
    alive = {name: pid for name, pid in pids.items() if not process_gone(pid)}
    raise AssertionError(f"still running: {alive}")


def test_window_first_then_server_and_worker_and_sigterm_shuts_down_cleanly(app: App) -> None:
    shown = app.wait_for(r"window shown ([\d.]+) s after the process started")
    print(f"launch to window: {shown.group(1)} s")
    # the window comes before any server work
    assert not any("server" in line for line in app.lines[:-1])
    pids = app.children()

    app.process.send_signal(signal.SIGTERM)
    assert app.process.wait(timeout=30) == 0
    wait_gone(pids, timeout=1)  # stopped and reaped by the app, not left to the kernel
    assert not (app.data_dir / "server.json").exists()


def test_killed_app_takes_worker_and_server_with_it(app: App) -> None:
    pids = app.children()

    app.process.kill()
    app.process.wait()
    wait_gone(pids)


def test_closing_the_window_quits_and_stops_worker_and_server(qapp: Any, tmp_path: Path) -> None:
    """run_app in this process: the window's close is the whole shutdown path."""
    from PySide6.QtCore import QTimer

    from desktop.app import run_app
    from desktop.main_window import MainWindow
    from runtime.connect import Target

    seen: dict[str, Any] = {}
    deadline = time.monotonic() + READY_TIMEOUT_S

    def close_when_running() -> None:
        windows = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
        session = windows[0].session if windows else None
        if session is not None and session.worker_state == "running":
            seen["pids"] = {"server": session.server.pid, "worker": session.worker.pid}
            seen["worker_label"] = windows[0].strip.worker_label.text()
            windows[0].close()
        elif time.monotonic() < deadline:
            QTimer.singleShot(100, close_when_running)
        else:
            qapp.quit()

    qapp.setQuitOnLastWindowClosed(True)  # as in a fresh QApplication
    QTimer.singleShot(100, close_when_running)
    code = run_app(Target(address=None, namespace="default", data_dir=tmp_path / "data"))

    assert code == 0
    assert seen.get("worker_label", "").startswith("Worker: running · build ")
    wait_gone(seen["pids"], timeout=1)
    assert not (tmp_path / "data" / "server.json").exists()
