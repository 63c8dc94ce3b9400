"""The app's link to Temporal: the embedded server (when we run one), one client, one worker.

Everything here runs on the qasync loop of the GUI thread: the Temporal client is
not thread safe, and the server and worker are child processes we only talk to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import os
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from temporalio.client import Client

    from desktop.worker_process import WorkerProcess
    from runtime.connect import Target
    from runtime.server import EmbeddedServer

log = logging.getLogger(__name__)


class Session(QObject):
    """Starts, watches and stops what the app needs to reach Temporal.

    Signals:
        server_changed(state, address): "starting", "running", "restarting",
            "failed", "stopped"; "shared" for an embedded server another process runs;
            "external" for a server given by address.
        worker_changed(state, build_id): the worker process's state ("waiting" for
            the server, then as `WorkerProcess`) and its build ("" while unknown).
        client_connected(client): the one Temporal client, once connected.
    """

    server_changed = Signal(str, str)
    worker_changed = Signal(str, str)
    client_connected = Signal(object)

    def __init__(self, *, target: Target, start_worker: bool = True, parent: Any = None) -> None:
        super().__init__(parent)
        self.target = target
        self.start_worker = start_worker
        self.client: Client | None = None
        self.address: str | None = target.address
        self.ui_url: str | None = None
        # embedded: "starting" from the outset, so the window never shows a stopped server
        # during the moment before start() runs
        self.server_state = "external" if target.address else "starting"
        self.worker_state = "waiting" if start_worker else "stopped"
        self.server: EmbeddedServer | None = None  # only when we started it
        self.worker: WorkerProcess | None = None
        self._stopped = False
        self._last_server_notice: tuple[str, str | None] | None = None

    def connected_client(self) -> Client:
        """The client, for an action that needs the server; an action taken before the
        app connected fails with this one line (shown by the action's error box)."""
        if self.client is None:
            raise RuntimeError("not connected to Temporal yet")
        return self.client

    @property
    def worker_build(self) -> str:
        return (self.worker.build_id if self.worker else None) or ""

    async def start(self) -> None:
        """Server, then client (the members table loads), then the worker."""
        # runtime.members pulls in the workflow code and the Agents SDK: seconds of
        # imports that would freeze the window if they ran on the GUI thread
        preload = asyncio.get_running_loop().run_in_executor(None, _import_slow_modules)
        try:
            try:
                await self._start_server()
            except BaseException:
                preload.cancel()  # drops our interest; the import ends in its thread
                raise
            await preload
            await self._connect()
            if self.start_worker and not self._stopped:
                await self._start_worker()
        except BaseException:
            if self.worker is None and self.worker_state == "waiting":
                self._set_worker_state("stopped")  # no longer waiting for anything
            raise

    async def stop(self) -> None:
        """Worker first (it finishes its tasks while the server is up), then our server."""
        self._stopped = True
        if self.worker is not None:
            await self.worker.stop()
        if self.server is not None:
            await self.server.stop()

    async def _start_server(self) -> None:
        if self.target.address:
            self.server_changed.emit(self.server_state, self.target.address)
            return
        from runtime.server import (
            EmbeddedServer,
            ServerConfig,
            find_running_server,
            private_network_available,
        )

        running = find_running_server(self.target.data_dir)
        if running is not None:
            self.address = str(running["address"])
            self.ui_url = running.get("ui_url") or None
            self._set_server_state("shared")
            return
        # asked of a child process once: off the GUI thread, then cached
        await asyncio.to_thread(private_network_available)
        # The Web UI asks no password (any local user could read and change workflows
        # through it): only when the operator asks for it.
        web_ui = os.environ.get("LOYALTY_DESK_WEB_UI", "").strip().lower() in ("1", "true", "yes")
        server = EmbeddedServer(
            ServerConfig(
                data_dir=self.target.data_dir,
                namespace=self.target.namespace,
                headless_ui=not web_ui,
            )
        )
        self.server = server
        self.address = server.address
        self.ui_url = server.ui_url
        server.on_state_changed = self._set_server_state
        self._set_server_state("starting")
        await server.start()

    async def _connect(self) -> None:
        from runtime.connect import connect

        assert self.address is not None
        self.client = await connect(dataclasses.replace(self.target, address=self.address))
        self.client_connected.emit(self.client)

    async def _start_worker(self) -> None:
        from desktop.worker_process import WorkerCommand, WorkerProcess
        from runtime.connect import tls_args

        assert self.address is not None
        worker = WorkerProcess(
            WorkerCommand(
                address=self.address,
                namespace=self.target.namespace,
                data_dir=self.target.data_dir,
                task_queue=self.target.task_queue,
                deployment=self.target.deployment,
                connection=tuple(tls_args(self.target)),
            )
        )
        self.worker = worker
        worker.on_state_changed = self._set_worker_state
        await worker.start()

    async def restart_worker(self) -> None:
        """A new worker process with the saved settings takes over from the running one:
        it starts, and only once it polls does the old one stop (it finishes its tasks),
        so at no moment is nobody polling. If the new one does not come up, the old one
        keeps running and the error is raised."""
        from desktop.worker_process import WorkerProcess

        old = self.worker
        if old is None or old.state not in ("running", "restarting"):
            raise RuntimeError("the app's worker is not running; it starts with the app")
        new = WorkerProcess(old.command)
        log.info("starting a new worker to take over from pid %s", old.pid)
        await new.start()  # WorkerError: the old one stays
        old.on_state_changed = None
        self.worker = new
        new.on_state_changed = self._set_worker_state
        self._set_worker_state(new.state)
        log.info("new worker pid %s polls; stopping pid %s", new.pid, old.pid)
        await old.stop()

    def _set_server_state(self, state: str) -> None:
        if (state, self.address) == self._last_server_notice:
            return  # EmbeddedServer repeats the "starting" we announced with the address
        self._last_server_notice = (state, self.address)
        self.server_state = state
        log.info("server %s at %s", state, self.address)
        self.server_changed.emit(state, self.address or "")

    def _set_worker_state(self, state: str) -> None:
        self.worker_state = state
        log.info("worker %s (build %s)", state, self.worker_build or "?")
        self.worker_changed.emit(state, self.worker_build)


SLOW_MODULES = ("runtime.members",)


def _import_slow_modules() -> None:
    for name in SLOW_MODULES:
        importlib.import_module(name)
