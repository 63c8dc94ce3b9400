"""Histories recorded by every released build replay with the current code, and the
events they carry give the state the build recorded (replay alone misses wrong numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities.history import received_events
from runtime.worker import sandbox_runner
from tests.memberkit import COMPARED
from workflows.member import MemberWorkflow
from workflows.rules import replay

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "histories").glob("member-*.json"))


def load(path: Path) -> tuple[dict, WorkflowHistory]:
    data = json.loads(path.read_text())
    history = WorkflowHistory.from_json("member-fixture", data["history"])
    return data, history


def test_there_is_a_fixture_for_the_current_build() -> None:
    from runtime.worker import default_build_id

    assert any(p.name == f"member-{default_build_id()}.json" for p in FIXTURES)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_recorded_history_replays_with_current_code(path: Path) -> None:
    _, history = load(path)
    replayer = Replayer(workflows=[MemberWorkflow], workflow_runner=sandbox_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_recorded_events_give_the_recorded_state(path: Path) -> None:
    data, history = load(path)
    recorded = data["state"]
    events = list(received_events(history))
    assert len(events) > 100
    computed = replay(recorded["member_id"], events).summary()
    assert {k: computed[k] for k in COMPARED} == {k: recorded[k] for k in COMPARED}
