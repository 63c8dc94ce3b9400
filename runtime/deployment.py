"""Worker Deployment Versions: registration, current version, drill labels."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from recovery.found import if_found
from workflows import drill
from workflows.ids import check_build_id, check_name


def os_account() -> str:
    """The OS account running this process, looked up by its uid: never $USER, $LOGNAME
    or $USERNAME (what getpass reads first), which anyone can set to anyone's name."""
    try:
        import pwd
    except ImportError:  # Windows: the logon session's user, not an environment variable
        return os.getlogin()
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no user database entry (some containers)
        return f"uid-{os.getuid()}"


def identity() -> str:
    """Who does it from where, for audit entries and Temporal requests."""
    return f"{os_account()}@{socket.gethostname()}"


# what a busy server answers for a while (deployment requests are rate limited, and the
# worker deployment's own workflows can be slow to answer, so the server cancels the
# request): retried, not fatal
TRANSIENT = (
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
)


@dataclass
class VersionInfo:
    build_id: str
    status: str  # current, ramping, draining, drained, inactive
    ramp_percentage: float = 0.0
    drill: str | None = None
    created_at: float | None = None


@dataclass
class DeploymentInfo:
    name: str
    current: str | None
    ramping: str | None
    ramp_percentage: float
    versions: list[VersionInfo] = field(default_factory=list)
    conflict_token: bytes = b""


async def describe(client: Client, deployment: str) -> DeploymentInfo | None:
    response = await if_found(
        client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    )
    if response is None:
        return None
    info = response.worker_deployment_info
    routing = info.routing_config
    current = routing.current_deployment_version.build_id or None
    ramping = routing.ramping_deployment_version.build_id or None
    versions = []
    for summary in info.version_summaries:
        build = summary.deployment_version.build_id
        status = "inactive"
        if build == current:
            status = "current"
        elif build == ramping:
            status = "ramping"
        elif summary.drainage_status:
            status = "draining" if summary.drainage_status == 1 else "drained"
        versions.append(
            VersionInfo(
                build_id=build,
                status=status,
                ramp_percentage=routing.ramping_version_percentage if build == ramping else 0,
                created_at=summary.create_time.ToSeconds()
                if summary.HasField("create_time")
                else None,
            )
        )
    return DeploymentInfo(
        name=deployment,
        current=current,
        ramping=ramping,
        ramp_percentage=routing.ramping_version_percentage,
        versions=versions,
        conflict_token=response.conflict_token,
    )


async def wait_registered(
    client: Client, deployment: str, build_id: str, timeout: float = 30.0
) -> DeploymentInfo:
    """Wait until a worker of `build_id` has polled, so the server knows the version."""
    check_name(deployment, "deployment name")
    check_build_id(build_id)  # set_current, set_ramping come here first
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await describe(client, deployment)
        except RPCError as error:  # a busy server: asked again until the deadline
            if error.status not in TRANSIENT or time.monotonic() > deadline:
                raise
            info = None
        if info and any(v.build_id == build_id for v in info.versions):
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"build {build_id!r} of deployment {deployment!r} is not registered after "
                f"{timeout:.0f} s: is a worker for it running (`loyalty-desk worker "
                f"--build-id {build_id}`)?"
            )
        await asyncio.sleep(0.3)  # deployment requests are rate limited: spend few


async def set_current(
    client: Client, deployment: str, build_id: str, *, timeout: float = 30.0
) -> None:
    await _route(client, deployment, build_id, None, timeout)


async def set_ramping(
    client: Client, deployment: str, build_id: str, percentage: float, *, timeout: float = 30.0
) -> None:
    if not 0 < percentage <= 100:
        raise ValueError(f"ramp percentage must be in (0, 100], got {percentage}")
    await _route(client, deployment, build_id, percentage, timeout)


async def _route(
    client: Client, deployment: str, build_id: str, ramp: float | None, timeout: float
) -> None:
    """Make `build_id` the deployment's current version (`ramp` None) or ramp `ramp` %
    of new work to it, once a worker of it registered; wait until routing took it."""
    info = await wait_registered(client, deployment, build_id, timeout)
    common: dict[str, Any] = {
        "namespace": client.namespace,
        "deployment_name": deployment,
        "build_id": build_id,
        "conflict_token": info.conflict_token,
        "identity": identity(),
    }
    service = client.workflow_service
    if ramp is None:
        await service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(**common)
        )
    else:
        await service.set_worker_deployment_ramping_version(
            SetWorkerDeploymentRampingVersionRequest(**common, percentage=ramp)
        )
    await wait_routed(client, deployment)


async def wait_routed(client: Client, deployment: str, timeout: float = 10.0) -> bool:
    """Wait until the server has propagated a routing change to the task queues, so the
    next workflow task already goes to the new version (until then some still went to
    the old one). False if it did not say so within `timeout`: routing still converges."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
        state = response.worker_deployment_info.routing_config_update_state
        if state != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS:
            return True  # completed, or a server that does not report it
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)


async def make_current_if_none(
    client: Client, deployment: str, build_id: str, *, timeout: float = 30.0
) -> bool:
    """First start of a deployment: make this build current so tasks flow at once."""
    info = await wait_registered(client, deployment, build_id, timeout)
    if info.current:
        return False
    try:
        await set_current(client, deployment, build_id, timeout=timeout)
    except RPCError as error:
        # another worker won the race; its build is current now, which is fine
        if error.status not in (RPCStatusCode.ABORTED, RPCStatusCode.FAILED_PRECONDITION):
            raise
        return False
    return True


async def load_drills(client: Client, deployment: str) -> dict[str, str]:
    """The deployment's drill builds and their bugs (a drill's build id names its bug)."""
    info = await describe(client, deployment)
    found: dict[str, str] = {}
    for version in info.versions if info else []:
        bug = drill.drill_for(version.build_id)
        if bug:
            found[version.build_id] = bug
            version.drill = bug
    return found
