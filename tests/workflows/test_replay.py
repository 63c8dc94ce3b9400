"""Histories recorded by every released build replay with the current code, and the
events they carry give the state the build recorded (replay alone misses wrong numbers).

Fixtures (tests/fixtures/histories, recorded by tests/record_fixture.py and
tests/record_scenarios.py):
- `member-BUILD.json`: one member run (`history`);
- `member-BUILD-chain.json`: every run of one member's chain (`histories`): continue-as-new,
  agent proposals decided by people and by policy, an adjustment; and the agent runs
  (AgentTurnWorkflow children) it started (`agent_runs`);
- `rollback-BUILD.json`: a RollbackWorkflow run (`history`) and, per repaired member, its
  chain with the reset run (`histories`) and the runs the reset replaced;
- `audit-BUILD.json`: the AuditWorkflow's run (`history`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.openai_agents import OpenAIAgentsPlugin
from temporalio.worker import Replayer

from activities.model_provider import LoyaltyModelProvider, ModelConfig
from recovery.history import received, received_events
from recovery.rebuild import Rebuild
from recovery.runs import (
    as_run_applied,
    next_run,
    previous_run,
    reset_base,
    run_input,
)
from runtime import agents_compat
from runtime.worker import model_activity_for, sandbox_runner
from tests.memberkit import COMPARED
from workflows import drill
from workflows.agent import AgentTurnWorkflow
from workflows.audit import SIGNAL_RECORD, AuditEntry, AuditWorkflow
from workflows.bulk_decision import BulkDecisionWorkflow
from workflows.effects import EffectWorkflow
from workflows.effects_config import EffectsConfigWorkflow
from workflows.guardrails import GuardrailsWorkflow
from workflows.member import MemberWorkflow
from workflows.rollback import RollbackWorkflow
from workflows.rollback_pages import PreviewPageWorkflow, PreviewWorkflow
from workflows.rules import MemberBook, MemberSnapshot, replay

HISTORIES = Path(__file__).parent.parent / "fixtures" / "histories"
FIXTURES = sorted(HISTORIES.glob("member-*.json"))
ALL_FILES = sorted(HISTORIES.glob("*.json"))
REPLAY_PATIENCE_S = 60


@cache
def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load(path: Path) -> tuple[dict, WorkflowHistory]:
    data = read(path)
    history = WorkflowHistory.from_json("member-fixture", data["history"])
    return data, history


@dataclass(frozen=True)
class Recorded:
    """One recorded history and the workflow class it belongs to."""

    label: str
    workflow: type
    workflow_id: str
    raw: Any

    def history(self) -> WorkflowHistory:
        return WorkflowHistory.from_json(self.workflow_id, self.raw)


def chain(label: str, workflow_id: str, runs: list[Any]) -> list[Recorded]:
    return [
        Recorded(f"{label}/run{n}", MemberWorkflow, workflow_id, raw) for n, raw in enumerate(runs)
    ]


def recorded(path: Path) -> list[Recorded]:
    """Every history in a fixture file, by the file's kind; an unknown kind is an error."""
    data, name = read(path), path.stem
    if name.startswith("member-") and "history" in data:
        return [Recorded(name, MemberWorkflow, "member-fixture", data["history"])]
    if name.startswith("member-"):
        agent_runs = [
            Recorded(f"{name}/agent{n}", AgentTurnWorkflow, run["workflow_id"], run["history"])
            for n, run in enumerate(data.get("agent_runs", []))
        ]
        return chain(name, data["workflow_id"], data["histories"]) + agent_runs
    if name.startswith("rollback-"):
        found = [Recorded(name, RollbackWorkflow, data["workflow_id"], data["history"])]
        found += [  # 0.4.3 on: the paged rollback's later runs, its preview and a page
            Recorded(f"{name}/run{n + 1}", RollbackWorkflow, data["workflow_id"], raw)
            for n, raw in enumerate(data.get("later_runs", []))
        ]
        if "preview" in data:
            found += [
                Recorded(f"{name}/preview{n}", PreviewWorkflow, data["preview"]["workflow_id"], raw)
                for n, raw in enumerate(data["preview"]["runs"])
            ]
            after, page = data["after_preview"], data["page"]
            found.append(
                Recorded(f"{name}/after", PreviewWorkflow, after["workflow_id"], after["history"])
            )
            found.append(
                Recorded(f"{name}/page", PreviewPageWorkflow, page["workflow_id"], page["history"])
            )
        for member, repaired in data["members"].items():
            wid = repaired["workflow_id"]
            found += chain(f"{name}/{member}", wid, repaired["histories"])
            found += chain(f"{name}/{member}/damaged", wid, repaired["damaged_histories"])
        return found
    if name.startswith("audit-"):
        return [Recorded(name, AuditWorkflow, data["workflow_id"], data["history"])]
    if name.startswith("effects-"):
        return [
            Recorded(
                f"{name}/effect",
                EffectWorkflow,
                data["effect"]["workflow_id"],
                data["effect"]["history"],
            ),
            Recorded(
                f"{name}/config",
                EffectsConfigWorkflow,
                data["config"]["workflow_id"],
                data["config"]["history"],
            ),
        ]
    if name.startswith("guardrails-"):
        return [Recorded(name, GuardrailsWorkflow, data["workflow_id"], data["history"])]
    if name.startswith("bulk-"):
        return [Recorded(name, BulkDecisionWorkflow, data["workflow_id"], data["history"])]
    raise ValueError(f"{path.name}: a fixture of unknown kind")


RECORDED = [r for path in ALL_FILES for r in recorded(path)]
MEMBER_RUNS = [r for r in RECORDED if r.workflow is MemberWorkflow]
# one member's chain: its runs oldest first, and the state recorded after the last
CHAINS: list[tuple[str, str, list[Any], dict[str, Any]]] = []
for _path in ALL_FILES:
    _data = read(_path)
    if _path.stem.startswith("member-") and "histories" in _data:
        CHAINS.append((_path.stem, _data["workflow_id"], _data["histories"], _data["state"]))
    if _path.stem.startswith("rollback-"):
        for _member, _repaired in _data["members"].items():
            CHAINS.append(
                (
                    f"{_path.stem}/{_member}",
                    _repaired["workflow_id"],
                    _repaired["histories"],
                    _repaired["state"],
                )
            )


def test_there_is_a_fixture_for_the_current_build() -> None:
    from runtime.worker import default_build_id

    assert any(p.name == f"member-{default_build_id()}.json" for p in FIXTURES)


def test_the_current_build_recorded_every_kind_of_history() -> None:
    """Chains with decided proposals, a rollback with its reset runs, the audit log."""
    from runtime.worker import default_build_id

    build = default_build_id()
    kinds = {r.workflow for r in RECORDED if f"-{build}" in r.label}
    assert kinds == {
        MemberWorkflow,
        RollbackWorkflow,
        AuditWorkflow,
        AgentTurnWorkflow,
        GuardrailsWorkflow,
        EffectWorkflow,
        EffectsConfigWorkflow,
        BulkDecisionWorkflow,
        PreviewWorkflow,
        PreviewPageWorkflow,
    }
    assert any(label.startswith(f"member-{build}-chain") for label, *_ in CHAINS)
    assert any(label.startswith(f"rollback-{build}/") for label, *_ in CHAINS)


def plugins(workflow: type) -> list[Any]:
    """An agent run replays with the plugin the worker runs it with (the offline model's
    calls are local activities, see runtime.worker.model_activity_for)."""
    if workflow is not AgentTurnWorkflow:
        return []
    agents_compat.install()
    provider = LoyaltyModelProvider(ModelConfig())
    return [OpenAIAgentsPlugin(model_params=model_activity_for(provider), model_provider=provider)]


async def replays(item: Recorded, bug: str | None = None) -> Any:
    replayer = Replayer(
        workflows=[item.workflow],
        workflow_runner=sandbox_runner(),
        plugins=plugins(item.workflow),
    )
    with drill.candidate(bug):
        # an agent run replayed with the other kind of model activity (regular instead
        # of local) never finishes replaying: fail it here rather than at the test timeout
        try:
            return await asyncio.wait_for(
                replayer.replay_workflow(item.history(), raise_on_replay_failure=False),
                REPLAY_PATIENCE_S,
            )
        except TimeoutError:
            pytest.fail(f"{item.label} did not replay within {REPLAY_PATIENCE_S} s")


@pytest.mark.parametrize("item", RECORDED, ids=[r.label for r in RECORDED])
async def test_recorded_history_replays_with_current_code(item: Recorded) -> None:
    result = await replays(item)
    assert result.replay_failure is None, result.replay_failure


# member runs that applied something (a run that only ran the agent issues no command
# that the drill below adds)
APPLYING = [r for r in MEMBER_RUNS if any(received(r.history()))]


def test_most_member_runs_applied_something() -> None:
    # the ones that did not: a chain's live run that had received nothing yet, and runs
    # that only took an agent result
    assert len(APPLYING) >= len(MEMBER_RUNS) * 3 // 4


@pytest.mark.parametrize("item", APPLYING, ids=[r.label for r in APPLYING])
async def test_a_changed_command_fails_the_replay(item: Recorded) -> None:
    """The fixtures catch an incompatible change: the same code with one unpatched
    command more (the drill's memo upsert on every task that applies something) does
    not replay any member run that applied an event or adjustment."""
    result = await replays(item, drill.UNPATCHED_COMMAND)
    assert result.replay_failure is not None
    assert "TMPRL1100" in str(result.replay_failure)


# one run each (chains: see test_chain_gives_the_recorded_state)
SINGLE_RUNS = [p for p in FIXTURES if "history" in read(p)]


@pytest.mark.parametrize("path", SINGLE_RUNS, ids=[p.stem for p in SINGLE_RUNS])
def test_recorded_events_give_the_recorded_state(path: Path) -> None:
    data, history = load(path)
    recorded = data["state"]
    events = list(received_events(history))
    assert len(events) > 100
    computed = replay(recorded["member_id"], events).summary()
    assert {k: computed[k] for k in COMPARED} == {k: recorded[k] for k in COMPARED}


def own_run_id(history: WorkflowHistory) -> str:
    """A reset run starts with a copy of its base run's events (and run id): its own id
    is in the reset's failed workflow task."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            if attrs.base_run_id and attrs.new_run_id:
                return attrs.new_run_id
    return history.run_id


def histories_of(workflow_id: str, runs: list[Any]) -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(workflow_id, raw) for raw in runs]


@pytest.mark.parametrize("case", CHAINS, ids=[c[0] for c in CHAINS])
def test_chain_gives_the_recorded_state(case: tuple[str, str, list[Any], dict[str, Any]]) -> None:
    """What the chain's runs received (events, adjustments, approvals by people and by
    policy), applied by the rules as the member applies it, gives the recorded state."""
    label, workflow_id, runs, recorded = case
    chain = histories_of(workflow_id, runs)
    # one chain: each run continued the one before it, and the last is the live one
    assert len(chain) >= 3
    for older, newer in itertools.pairwise(chain):
        assert previous_run(newer) == own_run_id(older)
    assert next_run(chain[-1]) is None
    start = run_input(chain[0])
    assert start.snapshot is None  # the first run: nothing carried in
    rebuild = Rebuild(MemberBook(MemberSnapshot(member_id=start.member_id)), start.requests or [])
    kinds: list[str] = []
    for history in chain:
        as_run_applied(rebuild.book, history)  # each run as its build applied it
        for item in received(history, approvals=True):
            kinds.append(item.kind)
            rebuild.apply(item, "rules")
    computed = rebuild.book.summary()
    assert {k: computed[k] for k in COMPARED} == {k: recorded[k] for k in COMPARED}
    assert (
        recorded["ledger_base"] + sum(e["delta"] for e in recorded["ledger"])
        == (recorded["points"])
    )
    assert [(e["kind"], e["cause"], e["delta"], e["balance"]) for e in computed["ledger"]] == [
        (e["kind"], e["cause"], e["delta"], e["balance"]) for e in recorded["ledger"]
    ]
    if label.startswith("rollback-"):  # a repaired member: its chain holds the reset run
        assert any(reset_base(h) for h in chain)
    elif "-flood" in label:  # bulk signals back to back: drained over several tasks
        assert len({item.applied_at for h in chain for item in received(h)}) > len(chain)
    else:  # proposals decided by people and by policy, an adjustment
        assert {"agent", "approval", "adjust"} <= set(kinds)
    assert (
        kinds.count("event")
        == recorded["events_processed"]
        + recorded["events_rejected"]
        + (recorded["duplicates_ignored"])
    )


AUDITS = [p for p in ALL_FILES if p.stem.startswith("audit-")]


@pytest.mark.parametrize("path", AUDITS, ids=[p.stem for p in AUDITS])
def test_audit_history_holds_the_recorded_entries(path: Path) -> None:
    data = read(path)
    history = WorkflowHistory.from_json(data["workflow_id"], data["history"])
    converter = DataConverter.default.payload_converter
    found = []
    for event in history.events:
        attrs = event.workflow_execution_signaled_event_attributes
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            assert attrs.signal_name == SIGNAL_RECORD
            entry = converter.from_payloads(list(attrs.input.payloads), [AuditEntry])[0]
            found.append((entry.action, entry.subject, entry.reason))
    assert len(found) >= 5
    assert found == [(e["action"], e["subject"], e["reason"]) for e in data["entries"]]
