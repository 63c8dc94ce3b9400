"""The questions the Settings panel asks after a save: restart the app's worker for a
new model (a new worker starts before the old one stops, so no event waits), or relaunch
for a new Temporal target; and what it says when the new worker did not take over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from PySide6.QtWidgets import QMessageBox

from desktop.asyncutil import async_slot, run_dialog, show_error
from desktop.worker_process import WorkerError

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel, QWidget

    from desktop.session import Session


class RestartQuestions:
    """For the Settings panel (a QWidget with these attributes and `_say`)."""

    if TYPE_CHECKING:
        _session: Session
        question: QMessageBox | None
        handover_error: QMessageBox | None
        message: QLabel
        status_posted: Any
        relaunch_requested: Any

        def _say(self, text: str) -> None: ...
        def window(self) -> QWidget: ...

    async def _agreed(self, name: str, title: str, text: str, detail: str, later: str) -> bool:
        """Ask the person (Yes / No); on No, say when the change applies instead (`later`)."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=cast("QWidget", self))
        box.setObjectName(name)
        box.setInformativeText(detail)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        self.question = box
        answer = await run_dialog(box)
        self.question = None
        if answer != QMessageBox.StandardButton.Yes:
            self._say(f"{self.message.text()} {later}")
            return False
        return True

    @async_slot(overlap="skip", title="Restarting the worker")
    async def offer_worker_restart(self) -> bool:
        """The model changed: restart the app's worker now (asked)? True when it was
        restarted."""
        worker = self._session.worker
        if worker is None or worker.state != "running":
            self._say(self.message.text() + " The worker uses them when it next starts.")
            return False
        if not await self._agreed(
            "restartWorkerQuestion",
            "Restart the worker?",
            "The app's worker reads the model when it starts. Restart it now?",
            "A new worker starts first and takes over; the old one stops only once the new "
            "one polls, so no event waits and none is lost.",
            "The worker uses them when it next starts.",
        ):
            return False
        self._say("Restarting the worker…")
        try:
            await self._session.restart_worker()
        except WorkerError as error:
            self._tell_failed_handover(error)
            return False
        text = f"Worker restarted with the new settings (build {self._session.worker_build})."
        self._say(text)
        self.status_posted.emit(text)
        return True

    def _tell_failed_handover(self, error: WorkerError) -> None:
        """The new worker did not come up: why (its log's last line), and who serves."""
        lines = [line for line in error.log_tail.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else ""
        worker = self._session.worker
        if worker is not None and worker.state == "running":
            serving = f"the old worker (build {self._session.worker_build}) keeps serving"
        else:
            serving = "no worker of this app runs now: events wait until one starts"
        text = f"The new worker did not start ({error.reason}" + (f": {why}" if why else "")
        text += f"); {serving}."
        self._say(text)
        self.status_posted.emit(text)
        box = show_error(self.window(), "The new worker did not start", error)
        box.setObjectName("workerHandoverError")
        box.setText(f"{error.reason}; {serving}.")
        self.handover_error = box

    @async_slot(overlap="skip", title="Relaunching")
    async def offer_relaunch(self) -> bool:
        """The Temporal target changed: it applies at the next launch; relaunch now?"""
        if not await self._agreed(
            "relaunchQuestion",
            "Relaunch Loyalty Desk?",
            "The Temporal target applies when the app next starts. Relaunch now?",
            "The app closes (its worker and embedded server stop cleanly) and starts again "
            "with the new target.",
            "It applies at the next launch.",
        ):
            return False
        self.relaunch_requested.emit()
        return True
