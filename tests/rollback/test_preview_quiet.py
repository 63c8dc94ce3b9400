"""Verification compares a member with its preview only when nothing reached it after
the preview: else a difference is the newer input's, not a mismatch (pure)."""

from __future__ import annotations

from typing import Any

from recovery.verify import _quiet_since

AS_OF = "2026-12-04T10:00:00+00:00"
PREVIEW = {"events_processed": 10, "events_rejected": 1, "points": 50, "as_of": AS_OF}


def state(*entries: tuple[str, str], processed: int = 10) -> dict[str, Any]:
    return {
        "events_processed": processed,
        "events_rejected": 1,
        "ledger": [{"kind": kind, "at": at, "delta": 1} for kind, at in entries],
    }


def test_nothing_since_the_preview_is_quiet() -> None:
    # an event's ledger time is its own (event time), and a re-sent decision keeps
    # its first time: neither says anything arrived after the preview
    assert _quiet_since(state(("earn", "2027-01-01T00:00:00Z")), PREVIEW)
    assert _quiet_since(state(("goodwill", "2026-12-04T09:00:00Z")), PREVIEW)


def test_an_event_an_adjustment_or_a_grant_after_the_preview_is_not() -> None:
    assert not _quiet_since(state(processed=11), PREVIEW)
    assert not _quiet_since(state(("adjustment", "2026-12-04T10:00:05Z")), PREVIEW)
    assert not _quiet_since(state(("goodwill", "2026-12-04T11:00:00Z")), PREVIEW)
    # a preview that does not say when it was made cannot be compared safely
    assert not _quiet_since(state(), {k: v for k, v in PREVIEW.items() if k != "as_of"})
