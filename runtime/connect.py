"""Where the Temporal server is and how to reach it: one place for CLI, worker and app.

The embedded server needs nothing but a data dir. A production cluster or Temporal
Cloud takes an address and a namespace, and TLS (a CA to trust, optionally a client
certificate for mTLS) or an API key. The API key is a secret: it comes from the OS
keyring (`loyalty-desk secrets set temporal`) or, on servers without a keyring, from
the LOYALTY_DESK_API_KEY variable; never from a command-line option, which any user
can read in the process list.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.service import TLSConfig

from workflows.ids import check_name

if TYPE_CHECKING:
    from runtime.temporal_settings import TemporalSettings

DEFAULT_NAMESPACE = "default"
TASK_QUEUE = "loyalty-desk"
DEPLOYMENT_NAME = "loyalty-desk"
API_KEY_ENV = "LOYALTY_DESK_API_KEY"
API_KEY_SECRET = "temporal"

# The embedded server is reached at "unix:///path/temporal.sock" (runtime/server.py); the
# SDK warns that a target with a scheme is deprecated, but it is the only way to name one.
warnings.filterwarnings("ignore", message="Target host as URL with scheme")


class ConnectError(RuntimeError):
    """The server cannot be found or reached; the message is one line for people."""


@dataclass(frozen=True)
class Tls:
    """TLS towards an external cluster; every field optional (system roots by default)."""

    ca: Path | None = None  # a private CA; None: the system's trusted roots
    cert: Path | None = None  # client certificate for mTLS
    key: Path | None = None  # its private key
    server_name: str | None = None  # when the address is not the certificate's name


@dataclass(frozen=True)
class Target:
    address: str | None  # None: the embedded server of data_dir
    namespace: str
    data_dir: Path
    task_queue: str = TASK_QUEUE
    deployment: str = DEPLOYMENT_NAME
    tls: Tls | None = None  # None: plain gRPC (the embedded server, a local cluster)
    use_api_key: bool = False  # send the API key from the environment or the keyring
    # the saved Settings chose this cluster: send its API key if the keyring holds one
    saved_api_key: bool = False

    def __post_init__(self) -> None:
        # both go into visibility queries and deployment records (workflows/ids.py)
        check_name(self.task_queue, "task queue")
        check_name(self.deployment, "deployment name")


def default_data_dir() -> Path:
    env = os.environ.get("LOYALTY_DESK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("loyalty-desk", appauthor=False))


def _path(option: str | Path | None, variable: str) -> Path | None:
    value = option or os.environ.get(variable)
    return Path(value).expanduser() if value else None


def _flag(option: bool | None, variable: str) -> bool | None:
    """The option, else the variable (1/true/yes/on or 0/false/no/off), else None."""
    if option is not None:
        return option
    value = os.environ.get(variable, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def resolve_target(
    address: str | None = None,
    namespace: str | None = None,
    data_dir: str | Path | None = None,
    *,
    task_queue: str | None = None,
    deployment: str | None = None,
    tls: bool | None = None,
    tls_ca: str | Path | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    tls_server_name: str | None = None,
    api_key: bool | None = None,
) -> Target:
    """Options first, then LOYALTY_DESK_* variables, then the saved Settings (the
    window's Settings panel), then defaults (embedded server).

    An API key is used when asked for (--api-key) or when LOYALTY_DESK_API_KEY is set,
    and for the cluster saved in Settings when the keyring holds one.
    TLS is on when asked for, or implied by a TLS file, a server name or an API key
    (Temporal Cloud); --no-tls turns it off explicitly (an API key on a private network).
    """
    directory = Path(data_dir).expanduser() if data_dir else default_data_dir()
    saved = _saved_target(directory)
    chosen = address or os.environ.get("LOYALTY_DESK_ADDRESS") or None
    # the saved cluster, also when named again (the window passes it to its worker)
    from_saved = saved.address is not None and chosen in (None, saved.address)
    ca = _path(tls_ca, "LOYALTY_DESK_TLS_CA")
    cert = _path(tls_cert, "LOYALTY_DESK_TLS_CERT")
    key = _path(tls_key, "LOYALTY_DESK_TLS_KEY")
    if from_saved and cert is None and key is None and saved.tls_cert_path:
        cert = Path(saved.tls_cert_path).expanduser()
        key = Path(saved.tls_private_path or "").expanduser()
    server_name = tls_server_name or os.environ.get("LOYALTY_DESK_TLS_SERVER_NAME") or None
    use_api_key = bool(api_key) or bool(os.environ.get(API_KEY_ENV, "").strip())
    wants_tls = _flag(tls, "LOYALTY_DESK_TLS")
    if wants_tls is None:
        wants_tls = use_api_key or any((ca, cert, key, server_name))
    return Target(
        address=chosen or saved.address,
        namespace=namespace
        or os.environ.get("LOYALTY_DESK_NAMESPACE")
        or saved.namespace
        or DEFAULT_NAMESPACE,
        data_dir=directory,
        task_queue=task_queue or os.environ.get("LOYALTY_DESK_TASK_QUEUE") or TASK_QUEUE,
        deployment=deployment or os.environ.get("LOYALTY_DESK_DEPLOYMENT") or DEPLOYMENT_NAME,
        tls=Tls(ca, cert, key, server_name) if wants_tls else None,
        use_api_key=use_api_key,
        saved_api_key=from_saved and not use_api_key,
    )


def _saved_target(data_dir: Path) -> TemporalSettings:
    from runtime import temporal_settings

    try:
        return temporal_settings.load(data_dir)
    except temporal_settings.TemporalSettingsError:
        return temporal_settings.TemporalSettings()  # `loyalty-desk model show` says why


def server_address(target: Target) -> str:
    if target.address:
        return target.address
    if target.tls is not None or target.use_api_key:
        raise ConnectError("TLS and API key options are for an external cluster: add --address")
    from runtime.server import find_running_server

    running = find_running_server(target.data_dir)
    if running is None:
        raise ConnectError(
            f"no embedded server is running for {target.data_dir}: "
            "start one with `loyalty-desk server`, or pass --address HOST:PORT"
        )
    return str(running["address"])


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConnectError(f"cannot read the TLS {what} {path}: {error.strerror}") from None


def tls_config(tls: Tls) -> TLSConfig:
    """The SDK's TLS settings, read from the files; a one-line error for a bad file."""
    if (tls.cert is None) != (tls.key is None):
        raise ConnectError("mTLS needs both --tls-cert and --tls-key")
    return TLSConfig(
        server_root_ca_cert=_read(tls.ca, "CA certificate"),
        client_cert=_read(tls.cert, "client certificate"),
        client_private_key=_read(tls.key, "client key"),
        domain=tls.server_name,
    )


def api_key() -> str:
    """The cluster's API key: the environment variable, else the keyring."""
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    if from_env:
        return from_env
    from runtime import secrets

    stored = secrets.get_secret(API_KEY_SECRET)
    if stored:
        return stored
    raise ConnectError(
        f"no Temporal API key: store one with `loyalty-desk secrets set {API_KEY_SECRET}` "
        f"(reads stdin) or set {API_KEY_ENV}"
    )


async def connect(target: Target) -> Client:
    address = server_address(target)
    tls: bool | TLSConfig = tls_config(target.tls) if target.tls is not None else False
    key = None
    if target.use_api_key or target.saved_api_key:
        # a keyring read is a D-Bus round trip (the first one probes the backends):
        # in a thread, so the app's event loop, on the GUI thread, goes on meanwhile
        key = await asyncio.to_thread(_api_key_of, target)
    if target.saved_api_key and key and tls is False:
        tls = True  # API keys are only sent over TLS
    try:
        return await Client.connect(address, namespace=target.namespace, tls=tls, api_key=key)
    except Exception as error:  # the SDK raises RuntimeError with a long gRPC text
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectError(f"cannot reach Temporal at {address}: {reason}") from None


def _api_key_of(target: Target) -> str | None:
    if target.use_api_key:
        return api_key()
    from runtime import secrets

    return secrets.get_secret(API_KEY_SECRET) or None


def tls_args(target: Target) -> list[str]:
    """The TLS and API-key options that reach `target` again: for a worker we spawn."""
    args: list[str] = []
    if target.tls is None:
        return ["--no-tls", "--api-key"] if target.use_api_key else args
    args.append("--tls")
    for option, value in (
        ("--tls-ca", target.tls.ca),
        ("--tls-cert", target.tls.cert),
        ("--tls-key", target.tls.key),
        ("--tls-server-name", target.tls.server_name),
    ):
        if value is not None:
            args += [option, str(value)]
    return args + (["--api-key"] if target.use_api_key else [])
