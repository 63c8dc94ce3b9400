"""Loyalty rules as pure, deterministic code.

`MemberBook` owns one member's state and applies events to it. It never reads the
clock: every time it uses comes from the events, so the same events in the same
order always give the same state. The member workflow wraps it; the rollback
preview and the tests run it without Temporal.

Rules:
- base points: one per whole currency unit of a trip fare or purchase, times the
  multiplier of the member's tier at the time of the event;
- tiers by points earned in the trailing `TIER_WINDOW_DAYS` days (event time);
- a refund claws back the points its event earned (never below zero);
- a refund that arrives before the event it refers to waits in a bounded hold (with
  `hold` on: the member workflow from build 0.3.0, the rules in `replay`) and applies
  when that event arrives; it is rejected, with the reason, only when HOLD_DAYS of
  event time pass without it or the hold is full (HOLD_KEEP), oldest first;
- points expire after `INACTIVITY_DAYS` without any event;
- every change of balance is a ledger entry; balance == ledger_base + sum(ledger);
- a granted tier (an approved `change_tier` proposal) holds for `TIER_GRANT_DAYS`
  days of event time from when it was granted (the decision, or the latest event if
  that is later): an upgrade is a floor (the member earns their way above it, never
  below), a downgrade a ceiling; once an event lies past its end, the trailing-window
  tier applies again. It earns at the granted tier's multiplier and shows in the
  ledger as a "tier" entry of zero points.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.contract import EARNING_TYPES
from workflows.events import Event, EventError, parse_event
from workflows.isotime import iso, parse_iso

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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying one raw event did: `accepted`, `duplicate` or `rejected` (with reason)."""

    status: str
    event_id: str | None = None
    reason: str | None = None
    event: Event | None = None


class MemberBook:
    """One member's state and the rules that change it."""

    def __init__(
        self, snapshot: MemberSnapshot, *, drill: str | None = None, hold: bool = False
    ) -> None:
        if drill is not None and drill not in DRILL_BUGS:
            raise ValueError(f"unknown drill {drill!r}; expected one of {DRILL_BUGS}")
        self.s = snapshot
        self.drill = drill
        # hold a refund that arrives before its event (else reject it, as builds before
        # 0.3.0 did); held refunds already carried are released either way
        self.hold = hold
        # held refunds the last `apply` applied or rejected, for the caller to observe
        self.released: list[Outcome] = []
        self._watermark = parse_iso(snapshot.watermark) if snapshot.watermark else None
        if snapshot.seen_format != SEEN_FORMAT:
            # carried from a build that kept raw ids: key them as this build does
            snapshot.seen = {id_key(k): v for k, v in snapshot.seen.items()}
            snapshot.seen_format = SEEN_FORMAT

    @property
    def member_id(self) -> str:
        return self.s.member_id

    @property
    def last_event_at(self) -> datetime | None:
        return self._watermark

    @property
    def window_points(self) -> int:
        return sum(self.s.window.values())

    # -- events ---------------------------------------------------------------

    def apply(self, raw: object, *, build_id: str, received_at: datetime | None = None) -> Outcome:
        """Apply one raw event; never raises for bad input, records it instead.

        `received_at` is when the event reached the member (the signal's time in
        history), used only to refuse events from the future.
        """
        self.released = []
        try:
            event = parse_event(raw)
            if event.member_id != self.s.member_id:
                raise EventError(
                    f"event for member {event.member_id!r} sent to member {self.s.member_id!r}",
                    event.event_id,
                )
            seen = self.s.seen.get(id_key(event.event_id))
            if seen is None:
                seen = self._held_as_seen(event.event_id)
            if seen is not None:
                if seen[0] == event.fingerprint:
                    self.s.duplicates_ignored += 1
                    return Outcome("duplicate", event.event_id)
                raise EventError(
                    f"event_id {event.event_id!r} was already used by a different event",
                    event.event_id,
                )
            self._check_time(event, received_at)
            if self._holds(event):
                return self._hold(event, build_id)
            earned = self._apply_valid(event, build_id)
        except EventError as error:
            self.reject(error.event_id, error.reason)
            return Outcome("rejected", error.event_id, error.reason)
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            # input no rule foresaw must not fail the workflow task (it would retry
            # forever and stall the member): record it like any other rejection
            reason = f"unreadable event ({type(error).__name__})"
            self.reject(None, reason)
            return Outcome("rejected", None, reason)
        self.s.events_processed += 1
        self._remember(event, earned)
        self._release(event, build_id)
        return Outcome("accepted", event.event_id, event=event)

    # -- the hold: refunds that arrived before their event ----------------------------

    def _holds(self, event: Event) -> bool:
        return (
            self.hold
            and event.type == "refund"
            and event.refers_to is not None
            and id_key(event.refers_to) not in self.s.seen
        )

    def _held_as_seen(self, event_id: str) -> list[Any] | None:
        key = id_key(event_id)
        for entry in self.s.held:
            if id_key(entry["event_id"]) == key:
                return [entry["fingerprint"]]
        return None

    def _hold(self, event: Event, build_id: str) -> Outcome:
        """Keep the refund until its event arrives; a full hold rejects its oldest."""
        assert event.refers_to is not None
        self.s.held.append(
            {
                "type": event.type,
                "event_id": event.event_id,
                "member_id": event.member_id,
                "occurred_at": iso(event.occurred_at),
                "refers_to": event.refers_to,
                "fingerprint": event.fingerprint,
            }
        )
        while len(self.s.held) > HOLD_KEEP:
            oldest = self.s.held.pop(0)
            self._reject_held(
                oldest,
                f"refund held for event {oldest['refers_to']!r}, which did not arrive "
                f"before {HOLD_KEEP} refunds were waiting",
            )
        self._expire_held(build_id)
        return Outcome("held", event.event_id, event=event)

    def _release(self, event: Event, build_id: str) -> None:
        """Apply the held refunds that waited for `event`; reject those held too long."""
        if self.s.held:
            key = id_key(event.event_id)
            waiting = [e for e in self.s.held if id_key(e["refers_to"]) == key]
            if waiting:
                self.s.held = [e for e in self.s.held if id_key(e["refers_to"]) != key]
                for entry in waiting:
                    self._apply_held(entry, build_id)
            self._expire_held(build_id)

    def _apply_held(self, entry: dict[str, Any], build_id: str) -> None:
        refund = Event(
            type=entry["type"],
            event_id=entry["event_id"],
            member_id=entry["member_id"],
            occurred_at=parse_iso(entry["occurred_at"]),
            refers_to=entry["refers_to"],
            fingerprint=entry["fingerprint"],
        )
        try:
            self._apply_valid(refund, build_id)
        except EventError as error:
            self._reject_held(entry, error.reason)
            return
        self.s.events_processed += 1
        self._remember(refund, 0)
        self.released.append(Outcome("accepted", refund.event_id, event=refund))

    def _expire_held(self, build_id: str) -> None:
        if not self.s.held or self._watermark is None:
            return
        horizon = self._watermark - timedelta(days=HOLD_DAYS)
        for entry in [e for e in self.s.held if parse_iso(e["occurred_at"]) < horizon]:
            self.s.held.remove(entry)
            self._reject_held(
                entry,
                f"refund held {HOLD_DAYS} days of event time for event "
                f"{entry['refers_to']!r}, which never arrived",
            )

    def _reject_held(self, entry: dict[str, Any], reason: str) -> None:
        self.reject(entry["event_id"], reason)
        self.released.append(Outcome("rejected", entry["event_id"], reason))

    def _check_time(self, event: Event, received_at: datetime | None) -> None:
        if received_at is not None and event.occurred_at > received_at + MAX_AHEAD:
            raise EventError(
                f"occurred_at {iso(event.occurred_at)} is in the future "
                f"(received {iso(received_at)})",
                event.event_id,
            )

    def _apply_valid(self, event: Event, build_id: str) -> int:
        if event.type == "refund":
            target = self._refund_target(event)  # validate before moving time forward
            self._advance(event.occurred_at, build_id)
            self._refund(event, target, build_id)
            return 0
        self._advance(event.occurred_at, build_id)
        if event.type == "support_ticket":
            return 0
        earned = event.amount_cents // 100 * multiplier_pct(self.s.tier) // 100
        if self.drill == "double-points":
            earned *= 2
        day = _day(event.occurred_at)
        if self._in_window(day):
            self.s.window[str(day)] = self.s.window.get(str(day), 0) + earned
        self.s.lifetime_points += earned
        if earned:
            self._post("earn", event.event_id, earned, event.occurred_at, build_id)
        if self.drill == "zero-on-trip" and event.type == "trip_completed" and self.s.points:
            self._post("earn", event.event_id, -self.s.points, event.occurred_at, build_id)
        self._retier()
        return earned

    def _refund_target(self, event: Event) -> list[Any]:
        assert event.refers_to is not None
        target = self.s.seen.get(id_key(event.refers_to))
        if target is None:
            raise EventError(f"refund refers to unknown event {event.refers_to!r}", event.event_id)
        if target[1] is None:
            raise EventError(
                f"refund refers to {event.refers_to!r}, which earned no points", event.event_id
            )
        if target[3]:
            raise EventError(f"event {event.refers_to!r} was already refunded", event.event_id)
        return target

    def _refund(self, event: Event, target: list[Any], build_id: str) -> None:
        _, earned, day, _ = target
        target[3] = True
        if self.drill == "drop-refunds":
            return
        clawback = min(earned, max(self.s.points, 0))
        self.s.lifetime_points -= earned
        key = str(day)
        if key in self.s.window:
            self.s.window[key] = max(0, self.s.window[key] - earned)
        if clawback:
            self._post("refund", event.event_id, -clawback, event.occurred_at, build_id)
        self._retier()

    def _advance(self, moment: datetime, build_id: str) -> None:
        """Move event time forward: expire an inactive balance, slide the tier window."""
        previous = self._watermark
        if previous is not None and moment <= previous:
            return
        deadline = self.expiry_deadline()
        if deadline is not None and moment > deadline:
            self._post("expiry", "inactivity", -self.s.points, deadline, build_id)
        self._watermark = moment
        self.s.watermark = iso(moment)
        horizon = _day(moment) - TIER_WINDOW_DAYS
        for key in [k for k in self.s.window if int(k) <= horizon]:
            del self.s.window[key]
        self._retier()

    def expire_if_due(self, now: datetime, build_id: str) -> bool:
        """Expire the balance when `now` (a durable timer's time) passed the deadline."""
        deadline = self.expiry_deadline()
        if deadline is None or now < deadline:
            return False
        self._post("expiry", "inactivity", -self.s.points, deadline, build_id)
        return True

    def expiry_deadline(self) -> datetime | None:
        last = self._last_activity()
        if last is None or self.s.points <= 0:
            return None
        return last + timedelta(days=INACTIVITY_DAYS)

    def _last_activity(self) -> datetime | None:
        """The latest event time or adjustment, whichever is later: both are activity."""
        moments = [m for m in (self._watermark, self.s.active_at) if m is not None]
        return (
            max(m if isinstance(m, datetime) else parse_iso(m) for m in moments)
            if moments
            else None
        )

    def _in_window(self, day: int) -> bool:
        return self._watermark is None or day > _day(self._watermark) - TIER_WINDOW_DAYS

    def _retier(self) -> None:
        self.s.tier = self._bounded(self.earned_tier())

    def earned_tier(self) -> str:
        """The tier the trailing window alone gives, whatever was granted."""
        if self.drill == "wrong-tier":
            return tier_for(self.s.lifetime_points * 4)
        return tier_for(self.window_points)

    def _bounded(self, earned: str) -> str:
        """`earned`, held at or above a granted floor (at or below a ceiling) while the
        grant lasts; a grant whose end the event clock passed is dropped."""
        grant = self.s.tier_override
        if grant is None:
            return earned
        if self._watermark is not None and self._watermark >= parse_iso(grant["until"]):
            self.s.tier_override = None
            return earned
        pick = max if grant["bound"] == "floor" else min
        return pick(earned, grant["tier"], key=tier_rank)

    # -- approved proposals -------------------------------------------------------

    def apply_approved(
        self, action: str, arguments: dict[str, Any], cause: str, at: datetime, build_id: str
    ) -> dict[str, Any] | None:
        """An approved agent proposal's effect on the member, as the member workflow
        applies it (and a replay of its history must): goodwill points or a granted
        tier, with the ledger entry it posts; other actions change nothing here."""
        if action == "grant_points":
            return self.grant(arguments["points"], cause, at, build_id)
        if action == "change_tier":
            return self.grant_tier(arguments["tier"], cause, at, build_id)
        return None

    def check_approved(self, action: str, arguments: dict[str, Any], cause: str) -> str | None:
        """Why `apply_approved` would refuse this approval now (None: it applies)."""
        if action == "grant_points":
            points: Any = arguments.get("points")
            problem = self.check_adjustment(points, cause)
            if problem is None and points < 0:
                problem = "a grant is positive"
            return problem
        if action == "change_tier":
            return self.check_tier_grant(arguments.get("tier"), cause)  # type: ignore[arg-type]
        return None

    # -- granted tiers ---------------------------------------------------------

    def check_tier_grant(self, tier: str, cause: str) -> str | None:
        if tier not in TIER_NAMES:
            return f"unknown tier {str(tier)[:40]!r}; expected one of {', '.join(TIER_NAMES)}"
        if not isinstance(cause, str) or not cause.strip():
            return "a cause (the proposal id) is required"
        return None

    def grant_tier(self, tier: str, cause: str, at: datetime, build_id: str) -> dict[str, Any]:
        """An approved tier change; validate first with check_tier_grant.

        The grant starts at `at` (the decision's workflow time) or at the latest event,
        whichever is later, and lasts TIER_GRANT_DAYS of event time. Measured against
        the earned tier, a grant up is a floor and a grant down a ceiling, so the
        member is at the granted tier right away. A later grant replaces an earlier
        one. Returns the ledger entry it posts.
        """
        problem = self.check_tier_grant(tier, cause)
        if problem:
            raise ValueError(problem)
        start = max(at, self._watermark) if self._watermark is not None else at
        self.s.tier_override = {
            "tier": tier,
            "bound": "floor" if tier_rank(tier) >= tier_rank(self.earned_tier()) else "ceiling",
            "granted_at": iso(start),
            "until": iso(start + timedelta(days=TIER_GRANT_DAYS)),
            "cause": cause,
        }
        self._retier()
        entry = self._post("tier", cause, 0, at, build_id)
        entry["tier"] = self.s.tier
        return entry

    # -- ledger ---------------------------------------------------------------

    def adjust(self, delta: int, reason: str, at: datetime, build_id: str) -> dict[str, Any]:
        """A manual adjustment or an approved grant; validate first with check_adjustment."""
        problem = self.check_adjustment(delta, reason)
        if problem:
            raise ValueError(problem)
        self.s.active_at = iso(at)
        return self._post("adjustment", reason, delta, at, build_id)

    def grant(self, points: int, proposal_id: str, at: datetime, build_id: str) -> dict[str, Any]:
        """An approved goodwill proposal: ledger kind "goodwill", cause the proposal id.

        Like an adjustment it moves the balance (not the tier window or lifetime
        points, which count earned points only) and counts as activity.
        """
        problem = self.check_adjustment(points, proposal_id)
        if problem is None and points < 0:
            problem = "a grant is positive"
        if problem:
            raise ValueError(problem)
        self.s.active_at = iso(at)
        return self._post("goodwill", proposal_id, points, at, build_id)

    def check_adjustment(self, delta: int, reason: str) -> str | None:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            return "the adjustment must be a non-zero whole number of points"
        if abs(delta) > MAX_ADJUSTMENT:
            return f"an adjustment is limited to {MAX_ADJUSTMENT:,} points"
        if self.s.points + delta < 0:
            return f"the balance is {self.s.points}; it cannot go below zero"
        if not isinstance(reason, str) or not reason.strip():
            return "a reason is required"
        return None

    def _post(
        self, kind: str, cause: str, delta: int, at: datetime, build_id: str
    ) -> dict[str, Any]:
        self.s.points += delta
        self.s.ledger_seq += 1
        entry = {
            "seq": self.s.ledger_seq,
            "kind": kind,
            "cause": clip_text(cause, CAUSE_BYTES),
            "delta": delta,
            "balance": self.s.points,
            "at": iso(at),
            "build": build_id,
        }
        self.s.ledger.append(entry)
        if len(self.s.ledger) > LEDGER_KEEP * 2:
            # trim in batches so the per-event cost stays flat
            dropped = self.s.ledger[:-LEDGER_KEEP]
            self.s.ledger_base += sum(e["delta"] for e in dropped)
            del self.s.ledger[:-LEDGER_KEEP]
        return entry

    def reject(self, event_id: str | None, reason: str) -> None:
        """Record input that never became an event (e.g. a malformed bulk signal)."""
        self.s.events_rejected += 1
        self.s.rejections.append(
            {
                "event_id": None if event_id is None else clip_text(event_id, CAUSE_BYTES),
                "reason": clip_text(reason, REASON_BYTES),
            }
        )
        if len(self.s.rejections) > REJECTIONS_KEEP:
            del self.s.rejections[:-REJECTIONS_KEEP]

    def _remember(self, event: Event, earned: int) -> None:
        earning = event.type in EARNING_TYPES
        self.s.seen[id_key(event.event_id)] = [
            event.fingerprint,
            earned if earning else None,
            _day(event.occurred_at),
            False,
        ]
        if len(self.s.seen) > SEEN_KEEP * 5 // 4:
            # dicts keep insertion order: drop the oldest ids in one batch
            for key in list(self.s.seen)[: len(self.s.seen) - SEEN_KEEP]:
                del self.s.seen[key]

    # -- views ----------------------------------------------------------------

    def ledger_sum(self) -> int:
        return self.s.ledger_base + sum(e["delta"] for e in self.s.ledger)

    def summary(self) -> dict[str, Any]:
        """The public `state` view (see README: member workflow contract)."""
        s = self.s
        return {
            "member_id": s.member_id,
            "points": s.points,
            "tier": s.tier,
            "tier_override": dict(s.tier_override) if s.tier_override else None,
            "lifetime_points": s.lifetime_points,
            "window_points": self.window_points,
            "events_processed": s.events_processed,
            "events_rejected": s.events_rejected,
            "duplicates_ignored": s.duplicates_ignored,
            "last_event_at": s.watermark,
            # the entries shown plus ledger_base always add up to points
            "ledger_base": s.ledger_base + sum(e["delta"] for e in s.ledger[:-LEDGER_KEEP]),
            "ledger": s.ledger[-LEDGER_KEEP:],
            "rejections": list(s.rejections),
            "held": [{k: e[k] for k in ("event_id", "refers_to", "occurred_at")} for e in s.held],
            "runs": s.runs,
        }


def replay(
    member_id: str,
    events: list[Any],
    *,
    build_id: str = "rules",
    drill: str | None = None,
    received_at: list[datetime] | None = None,
    hold: bool = True,
) -> MemberBook:
    """Apply events to a fresh member: what any correct build must end up with."""
    book = MemberBook(MemberSnapshot(member_id=member_id), drill=drill, hold=hold)
    for i, raw in enumerate(events):
        book.apply(raw, build_id=build_id, received_at=received_at[i] if received_at else None)
    return book
