"""A member's book: its state (MemberSnapshot), what applying an event did (Outcome),
the tier table and the bounds the rules keep. Pure code (see workflows.rules)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.events import Event

TIERS: tuple[tuple[str, int, int], ...] = (
    # name, points earned in the trailing window to reach it, multiplier in percent
    ("Blue", 0, 100),
    ("Gold", 1_000, 125),
    ("Platinum", 3_000, 150),
    ("Diamond", 8_000, 200),
)
TIER_NAMES = tuple(name for name, _, _ in TIERS)
TIER_WINDOW_DAYS = 90
TIER_GRANT_DAYS = TIER_WINDOW_DAYS  # a granted tier lasts one tier window of event time
INACTIVITY_DAYS = 365
MAX_AHEAD = timedelta(days=1)  # how far an event may lie ahead of its receipt (clock skew)
MAX_ADJUSTMENT = 1_000_000

LEDGER_KEEP = 100  # entries carried across continue-as-new; older ones fold into ledger_base
REJECTIONS_KEEP = 50
SEEN_KEEP = 4_096  # dedup window of accepted event ids, carried across runs
# Byte bounds on what a member carries, whatever its input: ids longer than this (or
# not plain ASCII) are kept in the dedup window as a fixed-size digest, and text kept
# in state (ledger causes, rejections) is clipped to this many bytes of JSON.
ID_KEY_CHARS = 48
CAUSE_BYTES = 200
REASON_BYTES = 300
SEEN_FORMAT = "id-key-1"
HOLD_KEEP = 50  # refunds waiting for the event they refer to
HOLD_DAYS = 30  # of event time, after which a held refund is rejected  # MemberSnapshot.seen_format once its keys are id_key()s

DRILL_BUGS = ("zero-on-trip", "double-points", "wrong-tier", "drop-refunds")
# rules' bugs that only redemptions show (a redemption applied twice, points not
# deducted); kept apart from DRILL_BUGS until the drill workflow can send redemptions
REDEEM_DRILL_BUGS = ("double-redeem", "free-redeem")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tier_for(window_points: int) -> str:
    name = TIERS[0][0]
    for tier, threshold, _ in TIERS:
        if window_points >= threshold:
            name = tier
    return name


def tier_rank(tier: str) -> int:
    return TIER_NAMES.index(tier)


def multiplier_pct(tier: str) -> int:
    for name, _, pct in TIERS:
        if name == tier:
            return pct
    raise ValueError(f"unknown tier {tier!r}")


def _day(moment: datetime) -> int:
    return (moment - _EPOCH).days


def id_key(event_id: str) -> str:
    """An event id as the dedup window keeps it: a short plain-ASCII id as it is, any
    other as "#" and a 128-bit digest (a 128-character id of 4-byte characters would
    cost 1.5 KB of JSON per entry, and 5,000 of them jam the member's continue-as-new)."""
    if (
        len(event_id) <= ID_KEY_CHARS
        and event_id.isascii()
        and event_id.isprintable()
        and not event_id.startswith("#")
    ):
        return event_id
    digest = hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16)
    return "#" + digest.hexdigest()


def json_bytes(value: Any) -> int:
    """Bytes of `value` as the payload converter writes it (ASCII-escaped JSON)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=True, default=str))


def clip_text(text: str, max_bytes: int) -> str:
    """`text` if its JSON fits in `max_bytes`; else a prefix that does, marked with "…"
    and a digest of the whole (so two long texts that share a prefix stay different)."""
    if json_bytes(text) <= max_bytes:
        return text
    tail = "…#" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    room = max_bytes - json_bytes(tail) - 2
    kept: list[str] = []
    for char in text:
        room -= json_bytes(char) - 2
        if room < 0:
            break
        kept.append(char)
    return "".join(kept) + tail


@dataclass
class MemberSnapshot:
    """Everything a member carries across continue-as-new; bounded in size."""

    member_id: str
    points: int = 0
    lifetime_points: int = 0
    tier: str = "Blue"
    events_processed: int = 0
    events_rejected: int = 0
    duplicates_ignored: int = 0
    watermark: str | None = None  # latest event time seen (ISO 8601)
    active_at: str | None = None  # latest manual adjustment or grant: activity too
    window: dict[str, int] = field(default_factory=dict)  # day number -> points earned
    ledger: list[dict[str, Any]] = field(default_factory=list)
    ledger_base: int = 0
    ledger_seq: int = 0
    # event id -> [fingerprint, points earned, day, refunded]
    seen: dict[str, list[Any]] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    runs: int = 1
    # a granted tier: {"tier", "bound" (floor | ceiling), "granted_at", "until", "cause"}
    tier_override: dict[str, Any] | None = None
    # how `seen` is keyed: "" (raw event ids, builds before 0.2.0) or SEEN_FORMAT
    seen_format: str = ""
    # refunds waiting for the event they refer to, oldest first (see HOLD_KEEP):
    # {"type", "event_id", "member_id", "occurred_at", "refers_to", "fingerprint"}
    held: list[dict[str, Any]] = field(default_factory=list)
    # request key (id_key) -> redemption record, oldest first (workflows.rules_redeem)
    redemptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # ledger seq of the latest expiry: a redemption before it returns nothing when cancelled
    expired_seq: int = 0
    # points a refund could not claw back because they were spent or gone (never below 0)
    shortfall: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying one raw event did: `accepted`, `duplicate` or `rejected` (with reason)."""

    status: str
    event_id: str | None = None
    reason: str | None = None
    event: Event | None = None
