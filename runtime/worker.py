"""The worker: one process per build, registered as a Worker Deployment Version."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version as package_version
from typing import Any

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.rollback import ROLLBACK_ACTIVITIES
from runtime import deployment
from workflows import drill
from workflows.audit import AuditWorkflow
from workflows.member import MemberWorkflow
from workflows.rollback import RollbackWorkflow

log = logging.getLogger(__name__)


def default_build_id() -> str:
    return package_version("loyalty-desk")


@dataclass(frozen=True)
class WorkerSettings:
    task_queue: str
    deployment: str
    build_id: str
    drill: str | None = None
    make_current_if_none: bool = True


def workflow_classes() -> Sequence[type]:
    return [MemberWorkflow, RollbackWorkflow, AuditWorkflow]


def activity_functions() -> Sequence[Any]:
    return [*ROLLBACK_ACTIVITIES]


def sandbox_runner() -> SandboxedWorkflowRunner:
    # the rules and the drill registry are pure and shared; passing them through
    # saves re-importing them for every workflow run
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
    )


def build_worker(
    client: Client, settings: WorkerSettings, *, extra_workflows: Sequence[type] = ()
) -> Worker:
    if settings.drill:
        drill.register(settings.build_id, settings.drill)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[*workflow_classes(), *extra_workflows],
        activities=list(activity_functions()),
        workflow_runner=sandbox_runner(),
        deployment_config=WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(
                deployment_name=settings.deployment, build_id=settings.build_id
            ),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
        ),
        max_cached_workflows=20_000,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def announce(client: Client, settings: WorkerSettings) -> None:
    """After the worker polls: label a drill, learn other drills, claim current if none."""
    await deployment.wait_registered(client, settings.deployment, settings.build_id)
    if settings.drill:
        await deployment.label_drill(client, settings.deployment, settings.build_id, settings.drill)
    await deployment.load_drills(client, settings.deployment)
    if settings.make_current_if_none:
        made = await deployment.make_current_if_none(client, settings.deployment, settings.build_id)
        if made:
            log.info(
                "build %s is now the current version of %s", settings.build_id, settings.deployment
            )


async def run_worker(
    client: Client,
    settings: WorkerSettings,
    *,
    ready: asyncio.Event | None = None,
    extra_workflows: Sequence[type] = (),
) -> None:
    """Run until cancelled or SIGTERM/SIGINT; shuts down gracefully."""
    worker = build_worker(client, settings, extra_workflows=extra_workflows)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread: the caller cancels us instead
    async with worker:
        await announce(client, settings)
        if ready is not None:
            ready.set()
        await stop.wait()
