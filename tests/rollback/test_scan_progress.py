"""Finding and previewing the damage report how far they are from the first second:
counts, a rate and the time left, in the preview (the wizard and `rollback --dry-run`)
and, from the find activity's heartbeats, in `rollback BUILD --status`."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from recovery.scan import DONE, FINDING, PREVIEWING, ScanProgress
from runtime.releases import preview_rollback, rollback_id
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.rollback.kit import BAD, damaged_members
from workflows.rollback import RollbackProgress
from workflows.rollback_messages import FIND_DAMAGE, QUERY_PROGRESS


def test_rate_and_time_left_follow_the_counts() -> None:
    scan = ScanProgress(total=1_000)
    scan.enter(FINDING)
    assert scan.eta_s is None and scan.text() == "finding: listing members, 0 of 1,000"
    scan.scanned, scan.found = 250, 40
    scan._stage_started -= 5.0  # five seconds into the stage
    scan.tick()
    assert round(scan.rate) == 50 and round(scan.eta_s or 0) == 15
    assert scan.text() == (
        "finding: 250 of 1,000 members looked at, 40 damaged · 50/s · about 15 s left"
    )
    # a reader's copy (a heartbeat's details) gives the same figures
    copy = ScanProgress.from_json(json.loads(json.dumps(scan.as_json())))
    assert (round(copy.rate), round(copy.eta_s or 0)) == (50, 15)
    scan.enter(PREVIEWING)
    scan.previewed = 10
    scan._stage_started -= 2.0
    assert scan.tick().text().startswith("previewing: 10 of 40 damaged members · 5/s")
    scan.enter(DONE)
    assert scan.eta_s == 0.0 and scan.text().startswith("found 40 damaged of 250 members")


async def test_the_preview_counts_as_it_goes(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"s{tag}-{i}" for i in range(6)]
    fed: dict[str, list] = {m: [] for m in members}
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        await damaged_members(deployment, members, fed)
        scan = ScanProgress()
        seen: list[dict] = []

        async def watch() -> None:
            while True:
                seen.append(scan.as_json())
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        scope = f"TemporalWorkerDeployment = '{deployment.target.deployment}'"
        report = await preview_rollback(
            deployment.client, BAD, scope, task_queue=deployment.target.task_queue, progress=scan
        )
        watcher.cancel()
    assert report.affected == len(members)
    assert (scan.stage, scan.total, scan.scanned, scan.found, scan.previewed) == (
        DONE,
        len(members),
        len(members),
        len(members),
        len(members),
    )
    # the counts only grow, and the total was known before the first member was looked at
    for key in ("listed", "scanned", "found", "previewed"):
        values = [s[key] for s in seen]
        assert values == sorted(values), key
    looking = [s for s in seen if s["scanned"]]
    assert looking and all(s["total"] == len(members) for s in looking)


@activity.defn(name=FIND_DAMAGE)
async def slow_find(total: int) -> None:
    """A find that is under way: it beats with how far it is until cancelled."""
    scan = ScanProgress(total=total)
    scan.enter(FINDING)
    scan.scanned, scan.found = total // 4, 3
    scan._stage_started -= 10.0
    while True:
        activity.heartbeat(scan.as_json())
        await asyncio.sleep(0.5)


@workflow.defn(name="PlanningRollback")
class PlanningRollback:
    """Stands for a RollbackWorkflow still finding the damage (its id, query and
    find activity are the rollback's)."""

    @workflow.run
    async def run(self, total: int) -> None:
        await workflow.execute_activity(
            slow_find,
            total,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=30),
        )

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self) -> RollbackProgress:
        return RollbackProgress(
            bad_build="9.9", state="planning", total=0, counts={}, verified_ok=0,
            mismatches=[], not_repairable=[], scanned=0,
        )  # fmt: skip


async def test_status_shows_how_far_the_find_is(deployment: Deployment) -> None:
    build = f"9.9-{uuid.uuid4().hex[:6]}"
    queue = f"planning-{build}"
    async with Worker(
        deployment.client,
        task_queue=queue,
        workflows=[PlanningRollback],
        activities=[slow_find],
        workflow_runner=UnsandboxedWorkflowRunner(),  # a stand-in, not the app's code
    ):
        handle = await deployment.client.start_workflow(
            PlanningRollback.run, 10_000, id=rollback_id(build), task_queue=queue
        )
        try:

            async def beating() -> bool:
                raw = (await handle.describe()).raw_description
                return any(a.heartbeat_details.payloads for a in raw.pending_activities)

            await eventually(beating, timeout=30)
            code, out, err = await cli(deployment, "rollback", build, "--status", "--json")
            assert code == 0, err
            finding = json.loads(out)["finding"]
            assert (finding["total"], finding["scanned"], finding["found"]) == (10_000, 2_500, 3)
            # 2,500 looked at in the 10 s before the beat: 250/s, 7,500 left in 30 s
            assert 200 <= finding["rate"] <= 250 and 30 <= finding["eta_s"] <= 38, finding
            code, out, err = await cli(deployment, "rollback", build, "--status")
            assert code == 0, err
            assert "finding: 2,500 of 10,000 members looked at, 3 damaged · " in out, out
            assert "s left" in out
        finally:
            await handle.terminate()
