"""The embedded server's files and ports: its data dir (private), the lock that allows
one server per data dir, the info file naming the running one, the Unix socket, the
free ports it is given, and the namespace settings made once it answers. runtime/server.py supervises the process itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from filelock import FileLock, Timeout

from runtime.childproc import ChildProcessFailed, open_private
from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DB_FILE = "temporal.sqlite"
INFO_FILE = "server.json"
LOCK_FILE = "server.lock"
SOCKET_FILE = "temporal.sock"
PRIVATE_NET = Path(__file__).with_name("private_net.py")
# A Unix socket path longer than this does not fit in sockaddr_un (108 bytes with the NUL).
MAX_SOCKET_PATH = 100
# start-dev reads the search attributes from its database again for every event or
# description that carries them (cluster metadata twice and the namespace once, on its
# one SQLite connection): 53 of the 76 persistence requests a rollback made per member.
# The app's attributes are registered when the server starts, and a server that had to
# add any is started again (`ensure_search_attributes`), so the copy it caches is right.
# The test suite's server runs with it too (tests/conftest.py).
SEARCH_ATTRIBUTES_CACHED = "system.forceSearchAttributesCacheRefreshOnRead=false"
# start-dev's dynamic config, each given as a --dynamic-config-value
DYNAMIC_CONFIG = (
    # The HTTP API (which the app does not use) answers 403 to every Host header: no web
    # page can POST to it, should it be reachable (the fallback without a private network).
    "frontend.httpAllowedHosts=[]",
    SEARCH_ATTRIBUTES_CACHED,
)


class ServerError(ChildProcessFailed):
    """The embedded server could not be started or is not usable.

    `reason` is one line (what the CLI prints); `log_tail` is the end of the server's log,
    which its message carries too.
    """

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason, log_tail)
        if log_tail:
            self.args = (f"{reason}\n--- server log (tail) ---\n{log_tail}",)


class DataDirLock:
    """One server per data dir: an exclusive lock on `server.lock`, held while it runs
    (the OS releases it when the process dies). Portable: the `filelock` package."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._lock = FileLock(data_dir / LOCK_FILE, timeout=0, mode=0o600, thread_local=False)

    def acquire(self) -> None:
        """Take the lock, or ServerError naming the server that holds it."""
        try:
            self._lock.acquire()
        except Timeout:
            info = read_info(self._data_dir)
            address = info.get("address", "an unknown address") if info else "an unknown address"
            raise ServerError(
                f"an embedded server is already running for {self._data_dir} at {address}"
            ) from None

    def release(self) -> None:
        self._lock.release(force=True)


def default_data_dir() -> Path:
    override = os.environ.get("LOYALTY_DESK_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("loyalty-desk", appauthor=False))


def find_running_server(data_dir: Path) -> dict[str, Any] | None:
    """The server.json of a live embedded server for this data dir, or None."""
    info = read_info(data_dir)
    if info is None:
        return None
    try:
        pid = int(info["pid"])
        address = str(info["address"])
        if not address.startswith("unix://"):
            int(address.rsplit(":", 1)[1])
    except (KeyError, TypeError, ValueError):
        return None
    if not pid_alive(pid) or not address_open(address):
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


def socket_path(data_dir: Path) -> Path:
    """The server's socket: in the data dir, or in a private temporary dir when the data
    dir's path is too long for a socket address."""
    path = data_dir.absolute() / SOCKET_FILE
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    import tempfile

    return Path(tempfile.mkdtemp(prefix="loyalty-desk-")) / SOCKET_FILE  # mkdtemp: 0700


def read_info(data_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((data_dir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def write_info(data_dir: Path, info: dict[str, Any]) -> None:
    # Atomic, so a reader never sees half a file.
    tmp = data_dir / f"{INFO_FILE}.tmp"
    tmp.unlink(missing_ok=True)
    with open_private(tmp, os.O_TRUNC) as out:
        out.write(json.dumps(info, indent=2).encode())
    tmp.replace(data_dir / INFO_FILE)


def remove_info(data_dir: Path) -> None:
    (data_dir / INFO_FILE).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def address_open(address: str) -> bool:
    if not address.startswith("unix://"):
        host, port = address.rsplit(":", 1)
        return port_open(host, int(port))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(address.removeprefix("unix://"))
            return True
    except OSError:
        return False


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
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


async def ensure_retention(client: Client, namespace: str, days: int) -> None:
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


async def ensure_search_attributes(client: Client, namespace: str) -> bool:
    """Register the app's search attributes this database lacks: `start-dev` registers
    its --search-attribute flags only when it creates the database, so a data dir made
    by an older build would miss the ones added since (the effects' ones, say). True
    when it added any: the server must then be started again to see them (its cache of
    them is kept, see DYNAMIC_CONFIG)."""
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
        for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
        if name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return bool(missing)
