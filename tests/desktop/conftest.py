"""Desktop tests run headless (offscreen Qt) and drive coroutines on a qasync loop."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from desktop.gc_policy import GuiThreadCollector

# Read when pytest-qt creates the QApplication, which is after this runs.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The offscreen platform warns about window hints it cannot honour; nothing to fix.
_OFFSCREEN_NOISE = "This plugin does not support"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.qt_log_ignore(_OFFSCREEN_NOISE))


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test's QSettings (window geometry, preferences) in a folder of its own: no
    test sees another's, none touches the operator's."""
    folder = tmp_path_factory.mktemp("qsettings")
    for kind in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(kind, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """A qasync loop on pytest-qt's QApplication: `qloop.run_until_complete(coro)`.

    Not installed as the thread's current loop, so pytest-asyncio's loop is untouched.
    Closing a window must not quit the application while a coroutine runs on it.
    """
    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    # as in the app: garbage is collected on the GUI thread only (tests run workers in
    # this process, and a collection on one of their threads can destroy Qt objects)
    collector = GuiThreadCollector(freeze=False)
    collector.start()
    try:
        yield loop
    finally:
        # a failed test can leave tasks behind: end them while the loop still runs
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=30))
        loop.close()
        collector.stop()
        gc.collect()
        qapp.setQuitOnLastWindowClosed(quit_on_close)


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (in a container nobody may reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.fixture
def gui_loop(qloop: qasync.QEventLoop) -> Iterator[qasync.QEventLoop]:
    """For tests that drive the window from plain (not async) code, as a user does: the
    qasync loop is the thread's current loop, as in the app, so async slots started by a
    key or a click have a loop to run on (after pytest-asyncio's tests the thread has
    none, and asyncio makes none implicitly)."""
    asyncio.set_event_loop(qloop)
    try:
        yield qloop
    finally:
        asyncio.set_event_loop(None)
