"""A test's own audit log: the namespace's one audit workflow, served by the test's worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import Client
from temporalio.service import RPCError

from runtime.connect import Target
from runtime.worker import WorkerSettings, announce, build_worker
from tests.conftest import Deployment
from workflows.audit import AUDIT_WORKFLOW_ID


async def fresh_audit_log(client: Client) -> None:
    """The namespace's audit workflow is shared by every test on the server: end the one
    an earlier test started (on its own task queue), so this test's worker serves it."""
    handle = client.get_workflow_handle(AUDIT_WORKFLOW_ID)
    try:
        await handle.terminate(reason="a test starts its own audit log")
    except RPCError:
        pass


@asynccontextmanager
async def desk(dep: Deployment) -> AsyncIterator[Target]:
    """A worker that archives into the test's own data dir, and an empty audit log."""
    await fresh_audit_log(dep.client)
    settings = WorkerSettings(
        task_queue=dep.target.task_queue,
        deployment=dep.target.deployment,
        build_id="1.0",
        data_dir=dep.target.data_dir,
    )
    async with build_worker(dep.client, settings):
        await announce(dep.client, settings)
        yield dep.target
