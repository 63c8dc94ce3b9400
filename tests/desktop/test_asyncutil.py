"""Async slots on the qasync loop: one run at a time, strong references, errors shown."""

from __future__ import annotations

import asyncio
from typing import Any

import qasync
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QPushButton, QWidget

from desktop.asyncutil import TaskSet, async_slot, cancel_slot_tasks, wait_until


class Panel(QWidget):
    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[str] = []
        self.cancelled = 0
        self.button = QPushButton("go", self)
        self.button.clicked.connect(self._on_button_clicked)  # clicked(bool) passes an arg

    @async_slot()
    async def _on_button_clicked(self) -> None:
        await self.slow("click")

    @async_slot()
    async def restart(self, tag: str) -> None:
        await self.slow(tag)

    @async_slot(overlap="skip")
    async def periodic(self, tag: str) -> None:
        await self.slow(tag)

    @async_slot(title="Loading members")
    async def broken(self) -> None:
        raise ValueError("the query is wrong")

    @async_slot(errors="status")
    async def broken_quietly(self) -> None:
        raise ValueError("server away")

    async def slow(self, tag: str) -> None:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.runs.append(tag)


def test_restart_cancels_the_previous_run(qloop: qasync.QEventLoop, qtbot: Any) -> None:
    panel = Panel()
    qtbot.addWidget(panel)

    async def scenario() -> None:
        panel.restart("first")
        await asyncio.sleep(0)
        await panel.restart("second")

    qloop.run_until_complete(scenario())
    assert panel.runs == ["second"] and panel.cancelled == 1


def test_skip_keeps_the_running_one(qloop: qasync.QEventLoop, qtbot: Any) -> None:
    panel = Panel()
    qtbot.addWidget(panel)

    async def scenario() -> None:
        first = panel.periodic("first")
        assert panel.periodic("second") is first
        await first

    qloop.run_until_complete(scenario())
    assert panel.runs == ["first"]


def test_signal_arguments_the_slot_does_not_take_are_dropped(
    qloop: qasync.QEventLoop, qtbot: Any
) -> None:
    panel = Panel()
    qtbot.addWidget(panel)

    async def scenario() -> None:
        panel.button.click()
        await wait_until(lambda: panel.runs == ["click"], timeout=5)

    qloop.run_until_complete(scenario())


def test_errors_open_a_dialog_without_blocking(
    qloop: qasync.QEventLoop, qtbot: Any, qapp: QApplication
) -> None:
    panel = Panel()
    qtbot.addWidget(panel)

    async def scenario() -> QMessageBox:
        task = panel.broken()
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback ran; nothing blocked us
        boxes = [w for w in qapp.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        assert len(boxes) == 1
        return boxes[0]

    box = qloop.run_until_complete(scenario())
    assert box.windowTitle() == "Loading members"
    assert box.text() == "the query is wrong"
    assert "ValueError" in box.detailedText()
    box.close()


def test_status_errors_go_to_the_status_bar(qloop: qasync.QEventLoop, qtbot: Any) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    panel = Panel(parent=window)
    window.setCentralWidget(panel)

    async def scenario() -> None:
        await asyncio.wait([panel.broken_quietly()])
        await asyncio.sleep(0)

    qloop.run_until_complete(scenario())
    assert window.statusBar().currentMessage() == "Broken quietly failed: server away"


def test_cancel_slot_tasks_and_task_set(qloop: qasync.QEventLoop, qtbot: Any) -> None:
    panel = Panel()
    qtbot.addWidget(panel)
    tasks = TaskSet()

    async def scenario() -> None:
        panel.restart("a")
        panel.periodic("b")
        owned = tasks.spawn(asyncio.sleep(10))
        await asyncio.sleep(0)
        waits = cancel_slot_tasks(panel)
        assert len(waits) == 2
        await asyncio.wait(waits)
        assert len(tasks) == 1
        await tasks.cancel_all()
        assert owned.cancelled() and len(tasks) == 0

    qloop.run_until_complete(scenario())
    assert panel.runs == [] and panel.cancelled == 2
