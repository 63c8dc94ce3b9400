"""The Releases panel's table models pass Qt's model tester, loaded and after a refresh,
and show what an operator reads off them (drill badge, before -> after diffs)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from desktop import theme
from desktop.release_models import (
    RecordsModel,
    audit_columns,
    preview_columns,
    replay_columns,
    version_columns,
)
from desktop.units import local_time_text


def versions() -> list[dict[str, Any]]:
    return [
        {
            "build_id": "1.0",
            "status": "draining",
            "ramp_percentage": 0,
            "drill": None,
            "members": 3,
        },
        {
            "build_id": "1.1+drill-zero-on-trip",
            "status": "ramping",
            "ramp_percentage": 25.0,
            "drill": "zero-on-trip",
            "members": 1_204,
        },
        {"build_id": "1.2", "status": "current", "ramp_percentage": 0, "drill": None, "members": 9},
    ]


def preview_row(member: str, before: int, after: int, problem: str | None = None) -> dict[str, Any]:
    fields = {"tier": "Blue", "lifetime_points": 10, "events_processed": 4, "events_rejected": 0}
    return {
        "member_id": member,
        "before": {"points": before, **fields},
        "after": {"points": after, **fields, "tier": "Gold" if after > 100 else "Blue"},
        "changes": before != after,
        "ledger_removed": [{"kind": "earn", "cause": "e1", "delta": 0}],
        "ledger_added": [{"kind": "earn", "cause": "e1", "delta": after - before}],
        "redeliver": 0,
        "problem": problem,
    }


CASES = {
    "versions": (version_columns, versions()),
    "preview": (
        preview_columns,
        [preview_row("a", 0, 120), preview_row("b", 5, 5, "reset point expired on 2026-01-01")],
    ),
    "replay": (
        replay_columns,
        [
            {
                "member_id": "a",
                "go": False,
                "runs": 2,
                "events": 9,
                "nondeterminism": None,
                "differences": {"points": [0, 120]},
                "unchecked": None,
            }
        ],
    ),
    "audit": (
        audit_columns,
        [
            {
                "at": "2026-11-22T06:00:00.123Z",
                "actor": "ops@host",
                "action": "release.start",
                "subject": "1.1",
                "reason": "ship it",
            }
        ],
    ),
}


@pytest.mark.parametrize("table", sorted(CASES))
def test_models_pass_the_model_tester(qtmodeltester: Any, table: str) -> None:
    columns, rows = CASES[table]
    model = RecordsModel(columns=columns())
    qtmodeltester.check(model)
    model.set_records(rows)
    qtmodeltester.check(model)
    model.set_records(rows[:1])
    qtmodeltester.check(model)
    assert model.rowCount() == 1


def test_a_drill_build_carries_a_red_badge_and_counts_read_as_numbers() -> None:
    model = RecordsModel(columns=version_columns())
    model.set_records(versions())
    drill = model.index(1, 1)
    assert model.data(drill) == "DRILL: zero-on-trip"
    assert model.data(drill, Qt.ItemDataRole.BackgroundRole).color() == theme.color(
        "drill_background"
    )
    assert model.data(model.index(0, 1)) == ""
    assert model.data(model.index(0, 1), Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(model.index(1, 2)) == "ramping 25%"
    assert model.data(model.index(1, 3)) == "1,204"


def test_preview_cells_show_before_after_and_why_a_member_cannot_be_repaired() -> None:
    model = RecordsModel(columns=preview_columns())
    model.set_records(CASES["preview"][1])
    assert model.data(model.index(0, 1)) == "0 → 120 (+120)"
    assert model.data(model.index(0, 2)) == "Blue → Gold"
    assert model.data(model.index(1, 1)) == "5"
    assert model.data(model.index(1, 6)) == "not repairable: reset point expired on 2026-01-01"
    # people's decisions the repair re-sends, and those whose proposal will not come back
    decided = {
        **CASES["preview"][1][0],
        "decisions": [
            {"proposal_id": "m:k1:0", "action": "message_member", "fate": "re-run"},
            {"proposal_id": "m:k2:0", "action": "grant_points", "fate": "dropped"},
        ],
    }
    model.set_records([decided])
    assert model.data(model.index(0, 7)) == "1 re-sent, 1 approval dropped"
    tip = model.data(model.index(0, 7), Qt.ItemDataRole.ToolTipRole)
    assert "m:k2:0 grant_points: dropped: its trigger does not fire again" in tip


def test_replay_verdicts_name_the_reason_without_the_sdk_dump() -> None:
    model = RecordsModel(columns=replay_columns())
    failure = (
        "Workflow activation completion failed: Failure { failure: Some(Failure { message: "
        '"[TMPRL1100] Nondeterminism error: UpsertWorkflowSearchAttributesMachine does not '
        'handle HistoryEvent(id: 15, TimerStarted)", source: "" })'
    )
    row = CASES["replay"][1][0] | {"nondeterminism": failure, "differences": {}}
    model.set_records([row, CASES["replay"][1][0]])
    assert model.data(model.index(0, 4)) == (
        "Nondeterminism error: UpsertWorkflowSearchAttributesMachine does not handle "
        "HistoryEvent(id: 15, TimerStarted)"
    )
    assert model.data(model.index(1, 3)) == "NO-GO"
    assert model.data(model.index(1, 4)) == "points live 0 vs candidate 120"


def test_audit_times_are_shown_in_the_operators_zone_with_utc_on_hover() -> None:
    model = RecordsModel(columns=audit_columns())
    model.set_records(CASES["audit"][1])
    when = model.index(0, 0)
    assert model.headerData(0, Qt.Orientation.Horizontal) == "When"
    assert model.data(when) == local_time_text("2026-11-22T06:00:00.123Z")
    assert model.data(when, Qt.ItemDataRole.ToolTipRole) == "2026-11-22 06:00:00 UTC"
