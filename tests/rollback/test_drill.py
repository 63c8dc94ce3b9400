"""The whole drill on a real dev server: a good build, a drill build that corrupts
members across continue-as-new, the fixed build, then preview, rollback and verify."""

from __future__ import annotations

import uuid

import pytest

from recovery import repair
from runtime import deployment as releases
from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment
from tests.kit.events import member_events
from tests.memberkit import start_member
from tests.rollback.kit import rollback
from workflows.drill import drill_build_id
from workflows.rollback_messages import COMPARED_FIELDS
from workflows.rules import DRILL_BUGS, replay


async def feed(
    dep: Deployment, fed: dict[str, list], phase: str, members: list[str], count: int, day: int
) -> None:
    for member in members:
        events = member_events(member, phase, count, day)
        fed[member].extend(events)
        await send_member(dep.client, dep.target, member, events, bulk=False)
    await wait_applied(dep.client, members)


@pytest.mark.parametrize("bug", DRILL_BUGS)
async def test_drill_then_rollback_repairs_every_member(deployment: Deployment, bug: str) -> None:
    client, target = deployment.client, deployment.target
    bad = drill_build_id("1.1", bug)
    tag = uuid.uuid4().hex[:6]
    touched = [f"d{tag}-{i}" for i in range(4)]
    untouched = f"d{tag}-quiet"
    members = [*touched, untouched]
    fed: dict[str, list] = {m: [] for m in members}
    async with deployment.worker("1.0"):
        for member in members:
            await start_member(client, target, member, max_signals=6)
        await feed(deployment, fed, "a", members, 8, day=1)
        async with deployment.worker("1.1", drill=bug):
            await releases.set_current(client, target.deployment, bad)
            # several continue-as-new boundaries under the bad build
            await feed(deployment, fed, "b", touched, 14, day=5)
            async with deployment.worker("1.2"):
                await releases.set_current(client, target.deployment, "1.2")
                await feed(deployment, fed, "c", members, 7, day=9)

                damaged_states = await wait_applied(client, members)
                scanned, damage = await repair.find_damage(client, bad)
                assert scanned >= len(members)
                assert sorted(d.member_id for d in damage) == sorted(touched)
                assert all(d.problem is None for d in damage)
                # the bad build's first task lies in a run that has since continued as new
                assert all(d.point and d.point.run_id != d.run_id for d in damage)

                previews = [await repair.preview_member(client, d) for d in damage]
                for preview in previews:
                    truth = replay(preview.member_id, fed[preview.member_id]).summary()
                    assert preview.after == {k: truth[k] for k in COMPARED_FIELDS}
                    assert preview.before == {
                        k: damaged_states[preview.member_id][k] for k in COMPARED_FIELDS
                    }
                assert any(p.changes for p in previews), "the drill damaged nobody"
                # the preview touched nothing
                assert await wait_applied(client, members) == damaged_states

                expected = {p.member_id: p.after for p in previews}
                result = await rollback(
                    client, target.task_queue, bad, f"rollback-{tag}", expected=expected
                )

                assert result.state == "done"
                assert result.total == len(touched)
                assert result.counts == {"reset": len(touched)}
                assert result.verified_ok == len(touched), result.mismatches
                states = await wait_applied(client, members)
    for member in members:
        truth = replay(member, fed[member]).summary()
        assert {k: states[member][k] for k in COMPARED_FIELDS} == {
            k: truth[k] for k in COMPARED_FIELDS
        }, member
        assert states[member]["build_id"] == "1.2"
    assert states[untouched] == damaged_states[untouched] | {
        "run_signals": states[untouched]["run_signals"]
    }
