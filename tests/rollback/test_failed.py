"""A paged rollback that cannot go on (a page of its preview is gone: retention, or an
operator deleted it) stops as `failed` with the reason, on the real server: the chunks
already under way finish and are verified, no member is reset twice or half-way, the
rest stay untouched and counted, the CLI says so and exits 1, and a fresh preview then
repairs exactly the members left."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest

from recovery import pages
from runtime import previews, releases
from runtime.feed import wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.rollback.kit import (
    BAD,
    assert_repaired,
    damaged_members,
    resets_of,
    scope_of,
    spawn_worker,
)
from workflows.rollback_pages import page_id

MEMBERS = 8
PAGE = 2  # four pages
GONE = 2  # the page deleted before the rollback reaches it


async def test_a_page_gone_mid_rollback_fails_it_cleanly_and_a_new_preview_finishes(
    deployment: Deployment,
) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"f{tag}-{i}" for i in range(MEMBERS)]
    fed: dict[str, list] = {m: [] for m in members}
    client, t = deployment.client, deployment.target
    scope = scope_of(f"f{tag}-")
    async with deployment.worker("1.0"):
        # the fixed build, the preview and the rollback in a process of their own: it
        # holds no copy of the page this test deletes
        worker = await spawn_worker(deployment, "2.1")
        await damaged_members(deployment, members, fed, concurrency=8)
    try:
        preview_id = await previews.start_preview(client, t.task_queue, BAD, scope, page_size=PAGE)
        report = await previews.preview_rollback(
            client, BAD, task_queue=t.task_queue, preview_id=preview_id
        )
        assert (report.affected, report.pages) == (MEMBERS, MEMBERS // PAGE)
        lost = await pages.read_page(client, preview_id, GONE)
        assert lost is not None
        lost_members = sorted(r["member_id"] for r in lost.rows)
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=page_id(preview_id, GONE)),
            )
        )

        async def deleted() -> bool:
            return await pages.read_page(client, preview_id, GONE) is None

        await eventually(deleted, timeout=30)

        # the rollback: one member a chunk, two chunks and two pages under way at once
        handle = await releases.start_rollback(
            client, t, BAD, reason="a page goes", preview_id=preview_id,
            rate_per_second=1_000, concurrency=2, query=scope,
        )  # fmt: skip
        result = await asyncio.wait_for(handle.result(), 120)
        assert result.state == "failed"
        assert result.error is not None and f"page {GONE}:" in result.error
        assert "gone" in result.error and "\n" not in result.error
        reset = result.counts.get("reset", 0)
        # two pages are under way at once, so the lost one starts once a page before it
        # is done; from its failure on no chunk starts (those under way finish): every
        # member reset is verified, the lost page's members are not touched, and what
        # was not reached is counted, not lost
        assert result.pages_done >= 1 and reset >= PAGE
        assert result.verified_ok == reset
        assert result.mismatch_count == 0, result.mismatches
        assert reset + result.counts.get("pending", 0) == MEMBERS, result.counts
        assert "resetting" not in result.counts

        gate = asyncio.Semaphore(8)

        async def resets(member: str) -> int:
            async with gate:
                return await resets_of(client, member)

        counts = dict(
            zip(members, await asyncio.gather(*(resets(m) for m in members)), strict=True)
        )
        assert all(counts[m] == 0 for m in lost_members), counts
        assert sum(counts.values()) == reset and set(counts.values()) <= {0, 1}, counts

        # the operator sees why, and the CLI says it failed
        code, out, err = await cli(deployment, "rollback", BAD, "--status", "--json")
        assert code == 1, (out, err)
        status = json.loads(out)
        assert status["state"] == "failed" and status["error"] == result.error

        # a fresh preview finds exactly the members left, and executing it repairs them
        code, out, err = await cli(
            deployment, "rollback", BAD, "--execute", "--query", scope,
            "--reason", "the rest", "--json",
        )  # fmt: skip
        assert code == 0, err
        again = json.loads(out)
        left = [m for m in members if counts[m] == 0]
        assert again["counts"] == {"reset": len(left)} and again["verified_ok"] == len(left)
        after = await asyncio.gather(*(resets(m) for m in members))
        assert after == [1] * MEMBERS  # each member reset once, over both rollbacks
        assert_repaired(await wait_applied(client, members), fed)
        assert again["after_preview"]["affected"] == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
