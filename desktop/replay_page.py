"""The replay check page of the Releases panel: the go / no-go of a candidate build for
the live members, run in a child process (desktop/replay_process.py) so the window stays
free while it replays."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QPushButton, QWidget

from desktop import preload, theme
from desktop.asyncutil import async_slot
from desktop.layouts import button, hbox, label, line_edit, vbox
from desktop.release_models import RecordsModel, replay_columns
from desktop.tables import records_table

if TYPE_CHECKING:
    from desktop.session import Session

# imported in a thread once connected: on the GUI thread they would freeze the window
REPLAY_MODULES = ("runtime.releases", "recovery.repair", "runtime.replay_check")


class ReplayPage(QWidget):
    """Candidate, Run / Cancel, the verdict and one row per member checked.

    Signals:
        refused(text): a one-line reason the check could not start or ended badly.
    """

    refused = Signal(str)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._replay: asyncio.Task[dict[str, Any]] | None = None  # the running check
        self.replay_pid: int | None = None  # its child process, while it runs
        self.candidate_edit = line_edit(
            self, "candidate build (empty: the code installed here, or a drill build id)"
        )
        self.replay_button = QPushButton("Run replay check", self)
        self.replay_cancel_button = button("Cancel", self, enabled=False)
        self.verdict_label = label(self, "replayVerdict")
        self.replay_model = RecordsModel(columns=replay_columns(), parent=self)
        table = records_table(self, self.replay_model, "replayTable")
        row = hbox((self.candidate_edit, 1), self.replay_button, self.replay_cancel_button)
        vbox(self, row, self.verdict_label, (table, 1))
        self.replay_button.clicked.connect(self._on_replay_button_clicked)
        self.replay_cancel_button.clicked.connect(self._on_replay_cancel_button_clicked)

    async def run_replay_check(self, candidate: str | None) -> None:
        """The go / no-go of `candidate` for the live members, from a child process
        (desktop/replay_process.py): replaying is processor work the window must not
        wait for. A candidate that is not installed here is refused at once."""
        await preload.ready(*REPLAY_MODULES)
        from desktop.replay_process import ReplayCheckError, ReplayCommand, run_replay_check
        from runtime.connect import tls_args
        from runtime.replay_check import resolve_candidate

        session = self._session
        await resolve_candidate(
            self._session.connected_client(), session.target.deployment, candidate
        )
        if session.address is None:
            raise RuntimeError("the Temporal server is not up yet")
        command = ReplayCommand(
            address=session.address,
            namespace=session.target.namespace,
            data_dir=session.target.data_dir,
            task_queue=session.target.task_queue,
            deployment=session.target.deployment,
            candidate=candidate,
            connection=tuple(tls_args(session.target)),
        )
        theme.set_tone(self.verdict_label, "")
        self.verdict_label.setText("Replaying the live members' histories…")
        self.replay_model.set_records([])
        self._replay = asyncio.get_event_loop().create_task(
            run_replay_check(
                command, on_started=self._on_replay_started, on_progress=self._on_replay_progress
            )
        )
        self.replay_button.setEnabled(False)
        self.replay_cancel_button.setEnabled(True)
        try:
            data = await self._replay
        except asyncio.CancelledError:
            self.verdict_label.setText("Replay check cancelled.")
            if self._replay.cancelled() and not _cancelling():
                return  # the Cancel button: a normal end
            raise
        except ReplayCheckError as error:
            self.verdict_label.setText(error.reason)
            raise
        finally:
            self._replay = None
            self.replay_pid = None
            self.replay_button.setEnabled(True)
            self.replay_cancel_button.setEnabled(False)
        self.replay_model.set_records(data["results"])
        go = bool(data["go"])
        label = str(data["candidate"]) + (f" (DRILL: {data['drill']})" if data.get("drill") else "")
        self.verdict_label.setText(f"{'GO' if go else 'NO-GO'} for {label}: {data['summary']}")
        theme.set_tone(self.verdict_label, "good" if go else "bad")

    def cancel_replay_check(self) -> bool:
        """Stop the running replay check (its child is killed); False when none runs."""
        if self._replay is None or self._replay.done():
            return False
        self._replay.cancel()
        return True

    # -- slots --------------------------------------------------------------------

    @async_slot(overlap="restart", title="Replay check")
    async def _on_replay_button_clicked(self) -> None:
        try:
            await self.run_replay_check(self.candidate_edit.text().strip() or None)
        except ValueError as error:  # bad input: its one-line reason, nothing changes
            self.refused.emit(str(error))

    def _on_replay_cancel_button_clicked(self) -> None:
        self.cancel_replay_check()

    def _on_replay_started(self, pid: int) -> None:
        self.replay_pid = pid
        self.verdict_label.setText(f"Replaying the live members' histories (process {pid})…")

    def _on_replay_progress(self, done: int, total: int) -> None:
        self.verdict_label.setText(
            f"Replaying the live members' histories: {done} of {total} checked…"
        )


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (a restart, the app closing)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


__all__ = ["ReplayPage"]
