"""The member contract, the history readers and the Qt-free timeline import nothing heavy:
opening a member's timeline must not pull in the Agents SDK (nor the member workflow,
which does). Each import runs in a fresh interpreter, as the window's first use does."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workflows import contract
from workflows.events import AMOUNT_FIELD, EVENT_TYPES, EventError, parse_event
from workflows.ids import member_id_of, member_workflow_id

HEAVY = ("agents", "workflows.member", "workflows.agent", "PySide6")


def _loaded_after_import(module: str) -> set[str]:
    probe = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return {name for name in done.stdout.strip().split(",") if name}


@pytest.mark.parametrize(
    "module",
    [
        "desktop.member_detail_timeline",
        "recovery.history",
        "recovery.rebuild",
        "workflows.contract",
    ],
)
def test_the_timeline_and_history_readers_leave_the_agents_sdk_out(module: str) -> None:
    assert _loaded_after_import(module) == set()


def test_the_member_detail_panel_reads_a_member_without_the_agents_sdk() -> None:
    # the state query, the sync update and a test event go by the contract's names; only
    # an adjustment (runtime.adjustments) waits for the preload of the member workflow
    loaded = _loaded_after_import("desktop.member_detail")
    assert not loaded & {"agents", "workflows.member", "workflows.agent"}


def test_the_member_workflow_still_loads_the_agent_it_runs() -> None:
    # the probe can see a heavy import: the test above would fail if one crept back
    assert "agents" in _loaded_after_import("workflows.member")


def test_the_contract_names_what_the_workflow_answers_to() -> None:
    from workflows.member import MemberWorkflow

    defn = MemberWorkflow.__temporal_workflow_definition  # type: ignore[attr-defined]
    assert defn.name == contract.MEMBER_WORKFLOW
    assert {contract.SIGNAL_EVENT, contract.SIGNAL_EVENTS, contract.SIGNAL_AGENT_RESULT} <= set(
        defn.signals
    )
    assert {contract.UPDATE_ADJUST, contract.UPDATE_SYNC, contract.UPDATE_DECIDE} <= set(
        defn.updates
    )
    assert {contract.QUERY_STATE, contract.QUERY_PROPOSALS, contract.QUERY_AGENT} <= set(
        defn.queries
    )
    assert member_id_of(member_workflow_id("rae")) == "rae"
    assert member_workflow_id("rae") == "member-rae"


def test_every_amount_field_is_the_one_the_parser_demands() -> None:
    assert EVENT_TYPES == contract.EVENT_TYPES and AMOUNT_FIELD == contract.AMOUNT_FIELD
    base = {"event_id": "e1", "member_id": "rae", "occurred_at": "2026-01-01T00:00:00Z"}
    for kind, field in contract.AMOUNT_FIELD.items():
        assert parse_event({**base, "type": kind, field: 1234}).amount_cents == 1234
        other = next(f for f in contract.AMOUNT_FIELDS if f != field)
        with pytest.raises(EventError, match=f"missing {field}"):
            parse_event({**base, "type": kind, other: 1234})
