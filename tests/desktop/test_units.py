"""Human units: durations, money, ages, grouped counts, and times in the operator's
time zone with UTC on hover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt

from desktop.approvals_model import ApprovalsModel
from desktop.member_detail_models import LedgerModel, ProposalsModel
from desktop.members_model import MembersTableModel
from desktop.members_store import COLUMNS, MembersStore
from desktop.units import (
    count_text,
    duration_text,
    exact_duration_text,
    local_time_text,
    money_text,
    parse_duration,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42, "42 s"),
        (5 * 60 + 59, "5 min"),
        (2 * 3600 + 5 * 60, "2 h 5 min"),
        (3 * 3600, "3 h"),
        (26 * 3600, "1 day 2 h"),
        (24 * 3600, "1 day"),
        (3 * 86400 + 7 * 3600, "3 days"),
        (-5, "0 s"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_money_has_its_currency_and_counts_are_grouped() -> None:
    assert money_text(0.0012) == "0.0012 USD"
    assert money_text(1234.5) == "1,234.50 USD"
    assert money_text(0) == "0.00 USD"
    assert count_text(100000) == "100,000"


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The operator is in UTC+05:30 (a zone whose offset is not whole hours)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_show_in_the_operators_zone_with_utc_on_hover(kolkata: None) -> None:
    at = "2026-01-19T09:02:00Z"
    assert local_time_text(at) == "2026-01-19 14:32:00"
    members = MembersTableModel(store=MembersStore())
    members.store.replace_all(
        [{"member_id": "ann", "last_event_at": at, "points": 1, "pending_proposals": 12345}]
    )
    keys = [c.key for c in COLUMNS]
    cell = members.index(0, keys.index("last_event_at"))
    assert members.data(cell) == "2026-01-19 14:32"
    assert members.data(cell, Qt.ItemDataRole.ToolTipRole) == "2026-01-19 09:02:00 UTC"
    assert members.data(members.index(0, keys.index("pending_proposals"))) == "12,345"

    ledger = LedgerModel()
    ledger.set_rows([{"seq": 1, "at": at, "kind": "trip", "delta": 1500, "balance": 123456}])
    when = ledger.index(0, 1)
    assert ledger.headerData(1, Qt.Orientation.Horizontal) == "When"
    assert ledger.data(when) == "2026-01-19 14:32:00"
    assert ledger.data(when, Qt.ItemDataRole.ToolTipRole) == "2026-01-19 09:02:00 UTC"
    assert ledger.data(ledger.index(0, 5)) == "123,456"

    proposals = ProposalsModel()
    proposals.set_rows(
        [{"id": "p", "created_at": at, "action": "grant_points", "cost_usd": 0.0031}]
    )
    assert proposals.data(proposals.index(0, 0)) == "2026-01-19 14:32:00"
    assert proposals.data(proposals.index(0, 5)) == "0.0031 USD"


def test_ages_of_proposals(kolkata: None) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    model = ApprovalsModel(now=lambda: now)
    rows = [
        {
            "id": f"m:{n}",
            "member_id": "m",
            "action": "grant_points",
            "arguments": {},
            "created_at": (now - age).isoformat(),
            "expires_at": (now + age).isoformat(),
        }
        for n, age in enumerate(
            (timedelta(minutes=5), timedelta(days=2), timedelta(hours=2, minutes=5))
        )
    ]
    model.set_rows(rows)
    age = [c.key for c in model.COLUMNS].index("age")
    assert [model.data(model.index(r, age)) for r in range(3)] == ["5 min", "2 days", "2 h 5 min"]
    tip = model.data(model.index(0, age), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Proposed 2026-03-10 17:25:00 (2026-03-10 11:55:00 UTC), expires ")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3 days", 259_200),
        ("2 days 6 h", 194_400),
        ("1 day 1 h 1 min 1 s", 90_061),
        ("90 min", 5_400),
        ("72h", 259_200),
        ("259,200", 259_200),
        ("45 seconds", 45),
        ("soon", None),
        ("3 fortnights", None),
        ("3 days and 2 h", None),
        ("", None),
    ],
)
def test_durations_are_typed_as_people_say_them(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds
    if seconds is not None:
        assert parse_duration(exact_duration_text(seconds)) == seconds
