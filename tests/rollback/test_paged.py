"""The paged rollback on the real server: bounded pages, continue-as-new of the preview
and of the rollback itself with its worker SIGKILLed in the middle, and a preview kept
on the server that a later process executes exactly (members damaged after it are
listed, not reset, and repaired only once their own preview is confirmed)."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

from recovery import pages
from runtime import previews, releases
from runtime.feed import wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.rollback.kit import (
    BAD,
    assert_repaired,
    damaged_members,
    members_of,
    resets_of,
    scope_of,
    spawn_worker,
)
from workflows.contract import member_workflow_id
from workflows.rollback import RollbackWorkflow

MEMBERS = 40
PAGE = 4  # 10 pages: the same continue-as-new crossings as 300 members in pages of 30
PAGES_PER_RUN = 3  # the rollback continues as new after this many pages
PREVIEW_PAGES_PER_RUN = 4


async def runs_of(deployment: Deployment, workflow_id: str) -> list[str]:
    query = f"WorkflowId = '{workflow_id}'"
    return [e.run_id async for e in deployment.client.list_workflows(query)]


async def test_a_paged_rollback_crosses_continue_as_new_with_its_worker_killed(
    deployment: Deployment,
) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"p{tag}-{i:03d}" for i in range(MEMBERS)]
    fed: dict[str, list] = {m: [] for m in members}
    client, t = deployment.client, deployment.target
    async with deployment.worker("1.0"):
        worker = await spawn_worker(deployment, "2.1")
        await damaged_members(deployment, members, fed, concurrency=24)
    # from here on only the worker process runs the fixed build, the preview and the rollback
    try:
        preview_id = await previews.start_preview(
            client,
            t.task_queue,
            BAD,
            scope_of(f"p{tag}-"),
            page_size=PAGE,
            pages_per_run=PREVIEW_PAGES_PER_RUN,
        )
        report = await previews.preview_rollback(
            client, BAD, task_queue=t.task_queue, preview_id=preview_id
        )
        assert report.affected == report.repairable == MEMBERS, report.not_repairable
        assert report.pages == MEMBERS // PAGE
        assert sorted(r["member_id"] for r in report.members) == members
        for k in range(report.pages):  # every page's record is small, whatever the count
            page = await pages.read_page(client, preview_id, k)
            assert page is not None and 0 < len(page.rows) <= PAGE
            assert len(json.dumps(page.rows)) < 256 * 1024
        handle = await releases.start_rollback(
            client,
            t,
            BAD,
            reason="paged test",
            preview_id=preview_id,
            rate_per_second=1_000,
            concurrency=8,
            query=scope_of(f"p{tag}-"),
            pages_per_run=PAGES_PER_RUN,
        )

        async def past_first_run() -> bool:
            progress = await handle.query(RollbackWorkflow.progress)
            return progress.pages_done > PAGES_PER_RUN or None  # type: ignore[return-value]

        await eventually(past_first_run, timeout=120, interval=0.2)
        worker.send_signal(signal.SIGKILL)  # mid-page, in the rollback's second run
        await worker.wait()
        worker = await spawn_worker(deployment, "2.1")
        result = await asyncio.wait_for(handle.result(), 240)
        assert result.state == "done" and result.error is None, result.error
        assert result.counts.get("reset", 0) + result.counts.get("already-repaired", 0) == MEMBERS
        assert result.verified_ok == MEMBERS and result.mismatch_count == 0, result.mismatches
        assert (result.pages_done, result.pages) == (MEMBERS // PAGE, MEMBERS // PAGE)
        assert result.after_preview is not None and result.after_preview["affected"] == 0

        # the rollback and its preview continued as new; no run of it grew with the count
        async def all_runs() -> list[str] | None:
            runs = await runs_of(deployment, handle.id)
            return runs if len(runs) >= MEMBERS // PAGE // PAGES_PER_RUN else None

        rollback_runs = await eventually(all_runs, timeout=20)
        for run in rollback_runs:
            history = await client.get_workflow_handle(handle.id, run_id=run).fetch_history()
            assert len(history.events) < 1_000, (run, len(history.events))
        assert len(await runs_of(deployment, preview_id)) >= 4

        gate = asyncio.Semaphore(16)

        async def resets(member: str) -> int:
            async with gate:
                return await resets_of(client, member)

        counts = await asyncio.gather(*(resets(m) for m in members))
        assert [m for m, n in zip(members, counts, strict=True) if n != 1] == []
        states = await wait_applied(client, members)
        assert_repaired(states, fed)
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()


async def test_a_kept_preview_is_executed_exactly_by_a_later_process(
    deployment: Deployment,
) -> None:
    tag = uuid.uuid4().hex[:6]
    early = [f"q{tag}-{i}" for i in range(3)]
    late = f"q{tag}-late"
    fed: dict[str, list] = {m: [] for m in [*early, late]}
    scope = scope_of(f"q{tag}-")
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        await damaged_members(deployment, early, fed, concurrency=3)
        # the preview, made by one process that then exits
        code, out, err = await cli(
            deployment, "rollback", BAD, "--dry-run", "--query", scope, "--json"
        )
        assert code == 0, err
        preview = json.loads(out)
        assert sorted(r["member_id"] for r in preview["members"]) == early
        preview_id = preview["preview_id"]
        assert preview_id.startswith("rollback-preview-")
        # a member the bad build damages after the preview
        await damaged_members(deployment, [late], fed)
        code, out, err = await cli(
            deployment, "rollback", BAD, "--dry-run", "--preview", preview_id, "--json"
        )
        assert code == 0, err
        assert sorted(r["member_id"] for r in json.loads(out)["members"]) == early  # kept as is

        # another process executes exactly the previewed members
        code, out, err = await cli(
            deployment,
            "rollback",
            BAD,
            "--execute",
            "--preview",
            preview_id,
            "--query",
            scope,
            "--reason",
            "zeroed trips",
            "--json",
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["counts"] == {"reset": 3} and result["verified_ok"] == 3
        assert await resets_of(deployment.client, late) == 0  # not in the preview: untouched
        after = result["after_preview"]
        assert (after["affected"], after["repairable"]) == (1, 1)
        assert await members_of(deployment.client, after["preview_id"]) == [late]
        code, out, err = await cli(
            deployment,
            "rollback",
            BAD,
            "--execute",
            "--preview",
            preview_id,
            "--reason",
            "again",
            "--json",
        )
        assert code == 0, err  # the same preview again: its members are already repaired
        assert json.loads(out)["counts"] == {"already-repaired": 3}
        # confirmed on its own: the late member's preview, executed
        code, out, err = await cli(
            deployment,
            "rollback",
            BAD,
            "--execute",
            "--preview",
            after["preview_id"],
            "--reason",
            "damaged after the first preview",
            "--json",
        )
        assert code == 0, err
        assert json.loads(out)["counts"] == {"reset": 1}
        assert await resets_of(deployment.client, late) == 1
        states = await wait_applied(deployment.client, [*early, late])
        assert_repaired(states, fed)
        for member in early:
            assert await resets_of(deployment.client, member) == 1

        code, out, err = await cli(
            deployment, "rollback", BAD, "--dry-run", "--preview", "rollback-preview-nope"
        )
        assert code != 0 and "no preview" in err
        for hostile in (member_workflow_id(late), "rollback-preview-" + "x" * 400):
            code, out, err = await cli(
                deployment, "rollback", BAD, "--execute", "--preview", hostile, "--reason", "no"
            )
            assert code != 0 and "not a preview id" in err, err
