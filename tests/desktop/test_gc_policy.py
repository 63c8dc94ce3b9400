"""The app collects garbage on the GUI thread only: automatic collection is off, and
cyclic garbage made on any thread is still freed, by the GUI thread, within seconds."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

from desktop.gc_policy import TICK_MS, GuiThreadCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_cycles_are_collected_on_the_gui_thread_only(qtbot: Any) -> None:
    collecting_threads: set[str] = set()

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting_threads.add(threading.current_thread().name)

    collector = GuiThreadCollector()
    gc.callbacks.append(seen)
    collector.start()
    try:
        assert not gc.isenabled()
        refs: list[weakref.ref[Node]] = []

        def make_garbage() -> None:  # lots of cycles, made on another thread
            for _ in range(20_000):
                refs.append(weakref.ref(Node()))

        worker = threading.Thread(target=make_garbage, name="not-the-gui")
        worker.start()
        worker.join()
        assert sum(1 for r in refs if r() is not None) > 0  # nobody collected yet
        qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5 * TICK_MS)
        assert collecting_threads == {threading.current_thread().name}
    finally:
        gc.callbacks.remove(seen)
        collector.stop()
    assert gc.isenabled()
