"""The member event contract: parsing and validation of raw JSON events.

Pure code: used by the member workflow, by the CLI feed (to report rejects before
sending) and by the rollback preview. Every rejection carries a one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workflows.contract import AMOUNT_FIELD, EVENT_TYPES, REFERS_TO

__all__ = ["AMOUNT_FIELD", "EVENT_TYPES", "Event", "EventError", "parse_event"]

MAX_AMOUNT_CENTS = 5_000_000  # $50,000: anything above is a data error, not a purchase
MAX_TEXT_CHARS = 10_000
MAX_REASON_CHARS = 500  # a redemption_cancelled's optional reason
MAX_ID_CHARS = 128
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

_MEMBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class EventError(ValueError):
    """An event that cannot be applied; `reason` is one line for people."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    event_id: str
    member_id: str
    occurred_at: datetime
    amount_cents: int = 0
    refers_to: str | None = None
    text: str | None = None
    fingerprint: str = ""


def valid_member_id(member_id: object) -> bool:
    return isinstance(member_id, str) and bool(_MEMBER_ID.fullmatch(member_id))


def _clip(value: object, limit: int = 60) -> str:
    """A short, one-line rendering of a bad value for a rejection reason."""
    try:
        text = repr(value)
    except ValueError:  # ints too long for Python to print
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _identifier(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        raise EventError(f"missing {key}")
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{key} must be a non-empty string, got {_clip(value)}")
    if len(value) > MAX_ID_CHARS:
        raise EventError(f"{key} longer than {MAX_ID_CHARS} characters")
    if not value.isprintable():
        raise EventError(f"{key} contains control characters")
    return value


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise EventError(f"occurred_at must be an ISO 8601 string, got {_clip(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EventError(f"occurred_at is not an ISO 8601 time: {_clip(value)}") from None
    if moment.tzinfo is None:
        raise EventError(f"occurred_at has no time zone (add Z or +00:00): {_clip(value)}")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: far out of range anyway
        moment = LATEST
    if not EARLIEST <= moment < LATEST:
        raise EventError(f"occurred_at {_clip(value)} is outside 2000-01-01..2100-01-01")
    return moment


def _amount(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        raise EventError(f"missing {key}")
    # bool is an int in Python; JSON true is never an amount
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{key} must be a whole number of cents, got {_clip(value)}")
    if value <= 0:
        raise EventError(f"{key} must be positive, got {_clip(value)}")
    if value > MAX_AMOUNT_CENTS:
        raise EventError(f"{key} {_clip(value)} is above the limit of {MAX_AMOUNT_CENTS} cents")
    return value


def _reason(value: object) -> str | None:
    """A redemption_cancelled's optional reason: one line of text, bounded."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"reason must be a string, got {_clip(value)}")
    if len(value) > MAX_REASON_CHARS:
        raise EventError(f"reason is {len(value)} characters, the limit is {MAX_REASON_CHARS}")
    _check_unicode(value)
    return value


def _check_unicode(text: str) -> None:
    """JSON can carry half a surrogate pair ("\\ud800"), which no UTF-8 text can hold: the
    agent's prompt and every UTF-8 serializer downstream would fail on it, for ever."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise EventError(
            f"text is not valid Unicode (a lone surrogate at character {error.start})"
        ) from None


def fingerprint(raw: dict[str, Any]) -> str:
    """A short digest of the event's content, to tell a resend from an id collision."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_event(raw: object, types: tuple[str, ...] = EVENT_TYPES) -> Event:
    """Validate one raw event; raise EventError with a one-line reason. `types`: the
    event types the reader takes (a member of an earlier build takes fewer)."""
    try:
        return _parse_event(raw, types)
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        if isinstance(error, EventError):
            raise
        # shapes no JSON decoder produces (sets, huge ints, absurd nesting)
        raise EventError(f"unreadable event ({type(error).__name__})") from None


def _parse_event(raw: object, types: tuple[str, ...]) -> Event:
    if not isinstance(raw, dict):
        raise EventError(f"an event must be a JSON object, got {type(raw).__name__}")
    event_id = raw.get("event_id")
    known_id = event_id if isinstance(event_id, str) and len(event_id) <= MAX_ID_CHARS else None
    try:
        kind = raw.get("type")
        if kind not in types:
            raise EventError(f"unknown event type {_clip(kind)}; expected one of {types}")
        event_id = _identifier(raw, "event_id")
        member_id = _identifier(raw, "member_id")
        if not valid_member_id(member_id):
            raise EventError(f"member_id {_clip(member_id)} is not a valid member id")
        occurred_at = _timestamp(raw.get("occurred_at"))
        amount = _amount(raw, AMOUNT_FIELD[kind]) if kind in AMOUNT_FIELD else 0
        refers_to = _identifier(raw, REFERS_TO[kind]) if kind in REFERS_TO else None
        text = None
        if kind == "redemption_cancelled":
            text = _reason(raw.get("reason"))
        if kind == "support_ticket":
            text = raw.get("text")
            if not isinstance(text, str):
                raise EventError(f"text must be a string, got {_clip(text)}")
            if len(text) > MAX_TEXT_CHARS:
                raise EventError(f"text is {len(text)} characters, the limit is {MAX_TEXT_CHARS}")
            _check_unicode(text)
    except EventError as error:
        error.event_id = known_id
        raise
    return Event(
        type=kind,
        event_id=event_id,
        member_id=member_id,
        occurred_at=occurred_at,
        amount_cents=amount,
        refers_to=refers_to,
        text=text,
        fingerprint=fingerprint(raw),
    )
