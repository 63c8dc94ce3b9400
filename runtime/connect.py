"""Where the Temporal server is and how to reach it: one place for CLI, worker and app."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.client import Client

if TYPE_CHECKING:
    from runtime.temporal_settings import TemporalSettings

DEFAULT_NAMESPACE = "default"
TASK_QUEUE = "loyalty-desk"
DEPLOYMENT_NAME = "loyalty-desk"


class ConnectError(RuntimeError):
    """The server cannot be found or reached; the message is one line for people."""


@dataclass(frozen=True)
class Target:
    address: str | None  # None: the embedded server of data_dir
    namespace: str
    data_dir: Path
    task_queue: str = TASK_QUEUE
    deployment: str = DEPLOYMENT_NAME


def default_data_dir() -> Path:
    env = os.environ.get("LOYALTY_DESK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("loyalty-desk", appauthor=False))


def resolve_target(
    address: str | None = None,
    namespace: str | None = None,
    data_dir: str | Path | None = None,
    *,
    task_queue: str | None = None,
    deployment: str | None = None,
) -> Target:
    """Options first, then LOYALTY_DESK_* variables, then the saved Settings, then
    defaults (embedded server)."""
    directory = Path(data_dir).expanduser() if data_dir else default_data_dir()
    saved = _saved_target(directory)
    return Target(
        address=address or os.environ.get("LOYALTY_DESK_ADDRESS") or saved.address,
        namespace=namespace
        or os.environ.get("LOYALTY_DESK_NAMESPACE")
        or saved.namespace
        or DEFAULT_NAMESPACE,
        data_dir=directory,
        task_queue=task_queue or os.environ.get("LOYALTY_DESK_TASK_QUEUE") or TASK_QUEUE,
        deployment=deployment or os.environ.get("LOYALTY_DESK_DEPLOYMENT") or DEPLOYMENT_NAME,
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
    from runtime.server import find_running_server

    running = find_running_server(target.data_dir)
    if running is None:
        raise ConnectError(
            f"no embedded server is running for {target.data_dir}: "
            "start one with `loyalty-desk server`, or pass --address HOST:PORT"
        )
    return str(running["address"])


async def connect(target: Target) -> Client:
    from runtime.temporal_settings import connect_options

    address = server_address(target)
    try:
        options = connect_options(target.data_dir, address)
    except OSError as error:
        raise ConnectError(f"cannot read the TLS files in Settings: {error}") from None
    try:
        return await Client.connect(address, namespace=target.namespace, **options)
    except Exception as error:  # the SDK raises RuntimeError with a long gRPC text
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectError(f"cannot reach Temporal at {address}: {reason}") from None
