"""The status bar's permanent part: the server, the deployment's current (and ramping)
build, the build of this app's worker (flagged when it is not the current one), and
the button to the Temporal Web UI. It reads the deployment every DEPLOYMENT_POLL_MS
once connected, and whenever the Releases panel loaded the versions."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton

from desktop import theme
from desktop.asyncutil import async_slot, cancel_slot_tasks

if TYPE_CHECKING:
    from desktop.session import Session

log = logging.getLogger(__name__)

DEPLOYMENT_POLL_MS = 10_000

_SERVER_TEXT = {
    "stopped": "Server: stopped",
    "starting": "Server: starting on {address}…",
    "running": "Server: running on {address}",
    "shared": "Server: running on {address} (shared)",
    "external": "Server: {address} (external)",
    "restarting": "Server: restarting on {address}…",
    "failed": "Server: failed",
}
_WORKER_TEXT = {
    "waiting": "Worker: waiting for the server",
    "stopped": "Worker: stopped",
    "starting": "Worker: starting…",
    "running": "Worker: running · build {build}",
    "restarting": "Worker: restarting…",
    "failed": "Worker: failed",
}


def shown_address(address: str) -> str:
    """The address as the status bar shows it: a private server's socket path is long
    and says nothing to an operator (the tooltip has it)."""
    return PRIVATE_SOCKET if address.startswith("unix:") else address


PRIVATE_SOCKET = "a private socket"


class StatusStrip(QObject):
    """Labels and a button in `window`'s status bar, kept current from the session."""

    def __init__(self, window: QMainWindow, session: Session) -> None:
        super().__init__(window)
        self._session = session
        status = window.statusBar()
        self.server_label = QLabel(window)
        self.server_label.setObjectName("serverStatus")
        self.worker_label = QLabel(window)
        self.worker_label.setObjectName("workerStatus")
        self.worker_label.setAccessibleName("Build of this app's worker")
        # the deployment's current build, which is not always the build of our worker
        self.deployment_label = QLabel("Deployment: …", window)
        self.deployment_label.setObjectName("deploymentStatus")
        self.deployment_label.setAccessibleName("Current build of the deployment")
        self.deployment_current: str | None = None
        self.deployment_ramping: tuple[str, float] | None = None
        self.web_ui_button = QPushButton("Open Web UI", window)
        self.web_ui_button.setObjectName("webUiButton")
        self.web_ui_button.setToolTip("Open the Temporal Web UI (at the selected member, if any)")
        status.addPermanentWidget(self.server_label)
        status.addPermanentWidget(self.deployment_label)
        status.addPermanentWidget(self.worker_label)
        status.addPermanentWidget(self.web_ui_button)
        self.show_server(session.server_state, session.address or "")
        self.show_worker(session.worker_state, session.worker_build)
        self._timer = QTimer(self)
        self._timer.setInterval(DEPLOYMENT_POLL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        """Connected: read the deployment now and every DEPLOYMENT_POLL_MS."""
        self._timer.start()
        self.refresh_deployment()

    def stop(self) -> list[asyncio.Task[Any]]:
        self._timer.stop()
        return cancel_slot_tasks(self)

    def show_server(self, state: str, address: str) -> None:
        if state == "starting" and not address:
            text = "Server: starting…"
        else:
            shown = shown_address(address)
            text = _SERVER_TEXT.get(state, f"Server: {state}").format(address=shown)
        self.server_label.setText(text)
        server = self._session.server
        error = server.last_error if server is not None else None
        where = f"The server's address: {address}" if address else ""
        self.server_label.setToolTip("\n".join(t for t in (where, error) if t))
        self.web_ui_button.setEnabled(
            bool(self._session.ui_url) and state in ("running", "shared", "restarting")
        )
        if not self._session.ui_url and state in ("running", "shared"):
            # off by default: it checks no credential, so any local account could use it
            self.web_ui_button.setToolTip(
                "The Web UI is off: it would let any account on this machine use the server. "
                "Launch with LOYALTY_DESK_WEB_UI=1 to turn it on."
            )

    def show_worker(self, state: str, build: str) -> None:
        self._worker_shown = (state, build)
        if not self._session.start_worker and state == "stopped":
            self.worker_label.setText("Worker: not started by this app")
            self.worker_label.setToolTip("")
            theme.set_tone(self.worker_label, "")
            return
        self.worker_label.setText(
            _WORKER_TEXT.get(state, f"Worker: {state}").format(build=build or "?")
        )
        worker = self._session.worker
        error = (worker.last_error if worker else None) or ""
        current = self.deployment_current
        if state == "running" and build and current and build != current:
            # truthful: our worker is not the build new work goes to
            self.worker_label.setToolTip(
                f"This app's worker runs build {build}; the deployment's current build is "
                f"{current}, which new and upgrading members run on. {error}".strip()
            )
            theme.set_tone(self.worker_label, "warn")
        else:
            self.worker_label.setToolTip(
                error or (f"The build of this app's own worker: {build}" if build else "")
            )
            theme.set_tone(self.worker_label, "")

    def show_deployment(self, current: str | None, ramping: tuple[str, float] | None) -> None:
        self.deployment_current = current
        self.deployment_ramping = ramping
        text = f"Deployment: current {current}" if current else "Deployment: no current build"
        if ramping is not None:
            text += f", ramping {ramping[0]} at {ramping[1]:g}%"
        self.deployment_label.setText(text)
        self.deployment_label.setToolTip(
            f"The build the deployment {self._session.target.deployment} routes work to"
        )
        self.show_worker(*self._worker_shown)

    @async_slot(overlap="skip", errors="status")
    async def refresh_deployment(self) -> None:
        """The deployment's current (and ramping) build, from the server."""
        from runtime.deployment import describe

        client = self._session.client
        if client is None:
            return
        try:
            info = await describe(client, self._session.target.deployment)
        except Exception as error:  # the server restarting, say: next poll
            log.info("could not read the deployment: %s", error)
            self.deployment_label.setText("Deployment: unknown")
            self.deployment_label.setToolTip(f"Could not read the deployment: {error}")
            return
        if info is None:
            self.show_deployment(None, None)
            return
        ramping = (info.ramping, info.ramp_percentage) if info.ramping else None
        self.show_deployment(info.current, ramping)

    def show_versions(self, rows: list[dict[str, Any]]) -> None:
        """The versions the Releases panel loaded: their current and ramping builds."""
        current = next((str(r["build_id"]) for r in rows if r["status"] == "current"), None)
        ramping = next(
            (
                (str(r["build_id"]), float(r["ramp_percentage"]))
                for r in rows
                if r["status"] == "ramping"
            ),
            None,
        )
        self.show_deployment(current, ramping)

    def _on_timer_timeout(self) -> None:
        self.refresh_deployment()
