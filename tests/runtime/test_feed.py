"""Reading JSON Lines for `feed`: every bad line becomes a reported reject, never a crash."""

from __future__ import annotations

import io

from runtime.feed import check, read_lines
from workflows.events import EventError


def test_unreadable_lines_are_rejects_with_reasons() -> None:
    good = (
        '{"type":"purchase","event_id":"e1","member_id":"m1",'
        '"occurred_at":"2026-01-01T00:00:00Z","amount_cents":500}'
    )
    lines = [good, "[" * 5_000 + "]" * 5_000, '{"amount_cents": ' + "9" * 5_000 + "}", "{oops"]
    numbered = list(read_lines(io.StringIO("\n".join(lines) + "\n")))
    assert [n for n, _ in numbered] == [1, 2, 3, 4]
    assert all(isinstance(value, EventError) for _, value in numbered[1:])
    batch = check(numbered)
    assert batch.report.accepted == 1
    assert [(r.line, r.sent) for r in batch.report.rejects] == [(2, False), (3, False), (4, False)]
    assert all(r.reason and "\n" not in r.reason for r in batch.report.rejects)
