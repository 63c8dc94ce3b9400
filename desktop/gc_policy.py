"""Garbage collection on the GUI thread only, in small steps.

Python's automatic collector runs on whichever thread happens to allocate: in the app
that can be an SDK or executor thread, and a collection there may destroy Qt objects
off the GUI thread (a crash seen once in the desktop tests). A full collection over
everything the app holds also stalls the event loop for tens of milliseconds. So the
app turns the automatic collector off and collects from a timer on the GUI thread: the
young generation often, older ones rarely; what exists once the app has started (the
imported modules, the window) is frozen out of every later collection, and so is what
survives a full collection later (modules imported on first use, loaded rows): each
full collection then walks only what is new since the last one. The price: a reference
cycle among frozen objects that later becomes garbage is never collected (plain
reference counting still frees everything else).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

TICK_MS = 1_000
MIDDLE_EVERY = 10  # ticks between collections of generation 1
FULL_EVERY = 120  # ticks between full collections
FREEZE_AFTER = 10  # ticks after start: the startup objects are long-lived


class GuiThreadCollector(QObject):
    """Collects garbage from a timer on the thread that owns it (the GUI thread)."""

    def __init__(self, parent: QObject | None = None, *, freeze: bool = True) -> None:
        super().__init__(parent)
        self._freeze = freeze  # tests run many apps in one process: they don't freeze
        self._ticks = 0
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Back to automatic collection (at shutdown, or when tests are done with it)."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()

    def _on_timer_timeout(self) -> None:
        self._ticks += 1
        if self._freeze and self._ticks == FREEZE_AFTER:
            # everything the start-up made (tens of thousands of objects from the
            # imports) sits in the older generations: freezing it instead of
            # collecting it saves a walk over all of it (over 100 ms)
            gc.freeze()
        elif self._ticks % FULL_EVERY == 0:
            gc.collect(2)
            if self._freeze:
                gc.freeze()
        elif self._ticks % MIDDLE_EVERY == 0:
            gc.collect(1)
        else:
            gc.collect(0)
