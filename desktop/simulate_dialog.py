"""Simulated traffic from the window: the generated feed of `loyalty-desk feed --simulate`,
sent on the app's own client, with progress and a cancel button.

The events are generated and checked off the GUI thread, sent on the qasync loop (the
signals are the feed's, `runtime.feed.deliver`), and then waited for until every member
has applied them, so the members table shows the traffic once the dialog closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.asyncutil import async_slot, cancel_slot_tasks, one_line
from desktop.layouts import button, hbox, label, vbox

if TYPE_CHECKING:
    from desktop.session import Session
    from runtime.feed import Batch

log = logging.getLogger(__name__)

MAX_EVENTS = 200_000  # generated in memory before sending: a few hundred MB at most
MAX_MEMBERS = 100_000
DEFAULT_EVENTS = 2_000
DEFAULT_MEMBERS = 100


@dataclass(frozen=True)
class TrafficPlan:
    """What to send: the same events as `loyalty-desk feed --simulate` for these values."""

    events: int
    members: int
    seed: int = 0
    prefix: str = "sim"
    bulk: bool = False

    def command(self) -> str:
        """The CLI command that sends the same events."""
        parts = [
            f"loyalty-desk feed --simulate {self.events} --members {self.members}",
            f"--seed {self.seed}",
        ]
        if self.prefix != "sim":
            parts.append(f"--prefix {self.prefix}")
        if self.bulk:
            parts.append("--bulk")
        return " ".join(parts)

    def problem(self) -> str | None:
        """Why these values cannot be sent, in one line; None when they can."""
        from runtime.simulate import member_ids
        from workflows.events import valid_member_id

        if not self.prefix:
            return "Give a member id prefix, e.g. sim"
        last = member_ids(self.members, self.prefix)[-1] if self.members else self.prefix
        if not valid_member_id(last):
            return (
                f"{self.prefix!r} cannot start a member id: use letters, digits, "
                "'.', '_', '@' or '-'"
            )
        return None


def prepare(plan: TrafficPlan) -> Batch:
    """The plan's events, generated and checked (seconds for 100,000: run off the GUI thread)."""
    from runtime import feed
    from runtime.simulate import simulate

    events = simulate(plan.events, plan.members, plan.seed, prefix=plan.prefix)
    return feed.check(enumerate(events, start=1))


class SimulateDialog(QDialog):
    """Members, events, seed, prefix and live or bulk; Send; progress; Cancel.

    Signals:
        status_posted(text): the outcome (events sent, rejected), for the status bar.
    """

    status_posted = Signal(str)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._sent = 0
        self._applied = 0
        self.setObjectName("simulateDialog")
        self.setWindowTitle("Simulate traffic · Loyalty Desk")

        self.events_spin = _spin(self, "simEvents", 1, MAX_EVENTS, DEFAULT_EVENTS, 1_000)
        self.members_spin = _spin(self, "simMembers", 1, MAX_MEMBERS, DEFAULT_MEMBERS, 10)
        self.seed_spin = _spin(self, "simSeed", 0, 2_147_483_647, 0, 1)
        self.seed_spin.setToolTip(
            "The same seed sends the same events again: members ignore events they "
            "already counted. A new seed sends new ones."
        )
        self.prefix_edit = QLineEdit("sim", self)
        self.prefix_edit.setObjectName("simPrefix")
        self.prefix_edit.setToolTip("Members are named PREFIX-00000, PREFIX-00001, …")
        self.live_radio = QRadioButton("Live: one signal per event, as events arrive", self)
        self.live_radio.setObjectName("simLive")
        self.bulk_radio = QRadioButton("Bulk: up to 500 events per signal, as an import", self)
        self.bulk_radio.setObjectName("simBulk")
        self.live_radio.setChecked(True)
        self._mode = QButtonGroup(self)
        self._mode.addButton(self.live_radio)
        self._mode.addButton(self.bulk_radio)
        mode = QVBoxLayout()
        mode.setSpacing(2)
        mode.addWidget(self.live_radio)
        mode.addWidget(self.bulk_radio)

        form = QFormLayout()
        form.addRow("Events", self.events_spin)
        form.addRow("Members", self.members_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Member prefix", self.prefix_edit)
        form.addRow("Delivery", mode)

        self.command_label = QLabel(self)
        self.command_label.setObjectName("simCommand")
        self.command_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.command_label.setWordWrap(True)
        self.command_label.setStyleSheet("color: palette(placeholder-text);")
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setObjectName("simProgress")
        self.progress_bar.hide()
        self.message = label(self, "simMessage", wrap=True)

        self.send_button = button("Send", self, "simSend", default=True)
        self.cancel_button = button("Close", self, "simCancel")
        self.cancel_button.setAutoDefault(False)
        buttons = hbox(1, self.send_button, self.cancel_button)
        vbox(self, form, self.command_label, self.progress_bar, self.message, buttons)
        self.setMinimumWidth(460)
        self._show_command()

        self.events_spin.valueChanged.connect(self._on_form_changed)
        self.members_spin.valueChanged.connect(self._on_form_changed)
        self.seed_spin.valueChanged.connect(self._on_form_changed)
        self.prefix_edit.textChanged.connect(self._on_form_changed)
        self.bulk_radio.toggled.connect(self._on_form_changed)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)

    # -- public -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self.send_button.isEnabled()

    def plan(self) -> TrafficPlan:
        return TrafficPlan(
            events=self.events_spin.value(),
            members=self.members_spin.value(),
            seed=self.seed_spin.value(),
            prefix=self.prefix_edit.text().strip(),
            bulk=self.bulk_radio.isChecked(),
        )

    def send(self) -> asyncio.Task[Any] | None:
        """Generate, send and wait for the plan's events (the dialog closes when done);
        None when the values cannot be sent (the dialog says why)."""
        plan = self.plan()
        problem = plan.problem()
        if problem is None and self._session.client is None:
            problem = "Not connected to Temporal yet: wait for the server to start"
        if problem:
            self.message.setText(problem)
            return None
        self._sent = self._applied = 0
        self._set_running(True)  # at once, before the task first runs
        task = self._send(plan)
        task.add_done_callback(lambda _: self._set_running(False))
        return task

    def stop(self) -> list[asyncio.Task[Any]]:
        """Cancel a run in progress (the window closes); returns it to await."""
        return cancel_slot_tasks(self)

    def showEvent(self, event: QShowEvent) -> None:
        """Opened again: the last run's outcome is in the status bar, not here."""
        if not self.running:
            self.message.setText(self.plan().problem() or "")
        super().showEvent(event)

    def reject(self) -> None:
        """Escape or the close box: a run in progress is cancelled with the dialog."""
        self.stop()
        super().reject()

    # -- running ----------------------------------------------------------------------

    @async_slot(overlap="skip", title="Simulated traffic failed")
    async def _send(self, plan: TrafficPlan) -> None:
        client = self._session.client
        assert client is not None
        started = time.perf_counter()
        try:
            await self._run(plan, client, started)
        except asyncio.CancelledError:
            text = (
                f"Simulated traffic cancelled: {self._sent:,} of {plan.events:,} events sent "
                "(send the same seed again for the rest: members ignore repeats)"
            )
            self.message.setText(text)
            self.status_posted.emit(text)
            raise
        except Exception as error:
            text = f"Simulated traffic failed: {one_line(error)}"
            self.message.setText(text)
            self.status_posted.emit(text)
            raise

    async def _run(self, plan: TrafficPlan, client: Any, started: float) -> None:
        from runtime import feed

        self.message.setText(f"Generating {plan.events:,} events…")
        self.progress_bar.setRange(0, 0)
        loop = asyncio.get_running_loop()
        batch = await loop.run_in_executor(None, prepare, plan)
        report = batch.report
        members = len(batch.by_member)
        total = sum(len(events) for events in batch.by_member.values())

        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%v / %m events sent")
        self.message.setText(f"Sending {total:,} events to {members:,} members…")

        def sent(count: int) -> None:
            self._sent += count
            self.progress_bar.setValue(self._sent)

        target = self._session.target
        await feed.deliver(client, target, batch, bulk=plan.bulk, progress=sent)
        source = f"simulate:{plan.events}x{plan.members}:seed{plan.seed} (desktop)"
        feed.record_rejects(target.data_dir, source, report.rejects)

        self.progress_bar.setRange(0, max(1, members))
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%v / %m members up to date")
        self.message.setText("Waiting for the members to apply the events…")

        def applied(count: int) -> None:
            self._applied += count
            self.progress_bar.setValue(self._applied)

        states = await feed.wait_applied(client, batch.by_member, progress=applied)
        seconds = time.perf_counter() - started
        refused = sum(1 for r in report.rejects if not r.sent)
        text = (
            f"Simulated traffic: {report.accepted:,} events sent to {members:,} members "
            f"in {seconds:.1f} s, {report.rejected:,} rejected"
        )
        if refused:
            text += f" ({refused:,} never sent; see the feed rejects log)"
        log.info("%s (%s; %d members applied)", text, plan.command(), len(states))
        self.message.setText(text)
        self.status_posted.emit(text)
        # the next run sends new events unless the user picks the seed again
        self.seed_spin.setValue(plan.seed + 1)
        self.accept()

    def _set_running(self, running: bool) -> None:
        for widget in (
            self.events_spin,
            self.members_spin,
            self.seed_spin,
            self.prefix_edit,
            self.live_radio,
            self.bulk_radio,
            self.send_button,
        ):
            widget.setEnabled(not running)
        self.cancel_button.setText("Cancel" if running else "Close")
        self.progress_bar.setVisible(running)

    def _show_command(self) -> None:
        self.command_label.setText(f"From a shell: {self.plan().command()}")

    # -- slots --------------------------------------------------------------------------

    def _on_form_changed(self, *_: Any) -> None:
        self._show_command()
        if not self.running:
            self.message.setText(self.plan().problem() or "")

    def _on_send_button_clicked(self) -> None:
        self.send()

    def _on_cancel_button_clicked(self) -> None:
        if self.running:
            self.stop()  # the dialog stays open and says how far it got
        else:
            self.reject()


def _spin(parent: QWidget, name: str, low: int, high: int, value: int, step: int) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setObjectName(name)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSingleStep(step)
    spin.setGroupSeparatorShown(True)
    return spin
