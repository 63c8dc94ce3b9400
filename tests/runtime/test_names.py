"""Issue 9: build ids and deployment names are checked before any server call.

The server accepted a build id with a quote in it, after which `release list` (whose
member counts put the id in a visibility query) failed for everyone. Now every way in
refuses such an id with one line, and a list that meets one registered by some other
client still works.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig

from runtime import deployment as releases
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from workflows.ids import BadNameError, check_build_id, check_name

QUOTED = "1.0'x"


@workflow.defn(name="NothingAtAll")
class NothingAtAll:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(seconds=1))


async def refused_worker(deployment: Deployment) -> str:
    """The reason `worker --build-id QUOTED` gives; a worker that runs instead is killed."""
    t = deployment.target
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "runtime.cli", "worker", "--build-id", QUOTED, "--json"),
        *("--address", deployment.address, "--data-dir", str(t.data_dir)),
        *("--task-queue", t.task_queue, "--deployment", t.deployment),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the worker started with a quoted build id") from None
    assert proc.returncode != 0
    reason = str(json.loads(out)["error"])
    assert "build id" in reason and "\n" not in reason, reason
    return reason


async def test_a_quoted_build_id_is_refused_everywhere_and_release_list_still_works(
    deployment: Deployment,
) -> None:
    async with deployment.worker("1.0"):
        await releases.wait_registered(deployment.client, deployment.target.deployment, "1.0")
        # every command that takes a build id, before it reaches the server
        assert await refused_worker(deployment)
        for command in (
            ("release", "start", QUOTED, "--reason", "try"),
            ("release", "set-current", QUOTED, "--reason", "try"),
            ("rollback", QUOTED, "--dry-run"),
            ("replay-check", QUOTED),
        ):
            code, out, err = await cli(deployment, *command, "--json")
            assert code != 0, command
            reason = json.loads(out)["error"]
            assert "build id" in reason and "'" in reason and "\n" not in reason, reason
        code, out, err = await cli(deployment, "release", "list", "--json")
        assert code == 0, err
        assert [v["build_id"] for v in json.loads(out)["versions"]] == ["1.0"]

        # another client that checks nothing registers one anyway: the list still works
        worker = Worker(
            deployment.client,
            task_queue=deployment.target.task_queue + "-raw",
            workflows=[NothingAtAll],
            workflow_runner=UnsandboxedWorkflowRunner(),
            deployment_config=WorkerDeploymentConfig(
                version=WorkerDeploymentVersion(
                    deployment_name=deployment.target.deployment, build_id=QUOTED
                ),
                use_worker_versioning=True,
                default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
            ),
        )
        async with worker:

            async def registered() -> bool:
                info = await releases.describe(deployment.client, deployment.target.deployment)
                return info is not None and any(v.build_id == QUOTED for v in info.versions)

            await eventually(registered, timeout=30)
            code, out, err = await cli(deployment, "release", "list", "--json")
            assert code == 0, f"release list failed: {out} {err}"
            versions = {v["build_id"]: v for v in json.loads(out)["versions"]}
            assert versions["1.0"]["problem"] is None
            assert "build id" in versions[QUOTED]["problem"]
            code, out, err = await cli(deployment, "release", "list")
            assert code == 0 and "UNUSABLE" in out, err


async def test_a_deployment_name_with_a_quote_is_refused_before_connecting(
    deployment: Deployment,
) -> None:
    code, out, _ = await cli(
        None,
        "release",
        "list",
        "--deployment",
        "dep'x",
        "--address",
        deployment.address,
        "--data-dir",
        str(deployment.target.data_dir),
        "--json",
    )
    assert code != 0
    assert "deployment name" in json.loads(out)["error"]


@pytest.mark.parametrize(
    "value",
    ["", "a b", "a'b", 'a"b', "a:b", "a/b", "a\\b", "-a", ".a", "x" * 65, "é", "a;b", "a\nb"],
)
def test_the_safe_set(value: str) -> None:
    with pytest.raises(BadNameError):
        check_build_id(value)
    with pytest.raises(BadNameError):
        check_name(value)


def test_usual_ids_pass() -> None:
    for value in ("1.0", "2.1", "0.1.0", "1.2.3rc1", "v2_0-beta", "x" * 64):
        assert check_build_id(value) == value and check_name(value) == value
    assert check_build_id("2.0+drill-zero-on-trip") == "2.0+drill-zero-on-trip"
    with pytest.raises(BadNameError):
        check_name("2.0+drill")  # a plus is for build ids only
