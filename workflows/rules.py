"""Loyalty rules as pure, deterministic code.

`MemberBook` owns one member's state and applies events to it. It never reads the
clock: every time it uses comes from the events, so the same events in the same
order always give the same state. The member workflow wraps it; the rollback
preview and the tests run it without Temporal.

Rules:
- base points: one per whole currency unit of a trip fare or purchase, times the
  multiplier of the member's tier at the time of the event;
- tiers by points earned in the trailing `TIER_WINDOW_DAYS` days (event time);
- a refund claws back the points its event earned (never below zero: what it could
  not take back, spent or expired, adds to `shortfall`);
- redemptions and their cancellation (by an operator or a `redemption_cancelled`
  event): see workflows.rules_redeem;
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

from datetime import datetime, timedelta
from typing import Any

from workflows.book import (
    CAUSE_BYTES,
    DRILL_BUGS,
    HOLD_DAYS,
    HOLD_KEEP,
    ID_KEY_CHARS,
    INACTIVITY_DAYS,
    LEDGER_KEEP,
    MAX_ADJUSTMENT,
    MAX_AHEAD,
    REASON_BYTES,
    REDEEM_DRILL_BUGS,
    REJECTIONS_KEEP,
    SEEN_FORMAT,
    SEEN_KEEP,
    TIER_GRANT_DAYS,
    TIER_NAMES,
    TIER_WINDOW_DAYS,
    TIERS,
    MemberSnapshot,
    Outcome,
    _day,
    clip_text,
    id_key,
    json_bytes,
    multiplier_pct,
    tier_for,
    tier_rank,
)
from workflows.contract import EARNING_TYPES
from workflows.rules_grants import Grants
from workflows.rules_hold import RefundHold
from workflows.rules_redeem import REDEMPTIONS_KEEP, Redemptions, parse_catalogue

# the rules' public names, with the book's (workflows.book) they build on
__all__ = [
    "CAUSE_BYTES",
    "DRILL_BUGS",
    "HOLD_DAYS",
    "HOLD_KEEP",
    "ID_KEY_CHARS",
    "INACTIVITY_DAYS",
    "LEDGER_KEEP",
    "MAX_ADJUSTMENT",
    "MAX_AHEAD",
    "REASON_BYTES",
    "REDEEM_DRILL_BUGS",
    "REDEMPTIONS_KEEP",
    "REJECTIONS_KEEP",
    "SEEN_FORMAT",
    "SEEN_KEEP",
    "TIERS",
    "TIER_GRANT_DAYS",
    "TIER_NAMES",
    "TIER_WINDOW_DAYS",
    "MemberBook",
    "MemberSnapshot",
    "Outcome",
    "clip_text",
    "id_key",
    "json_bytes",
    "multiplier_pct",
    "parse_catalogue",
    "replay",
    "tier_for",
    "tier_rank",
]
from workflows.events import Event, EventError, parse_event
from workflows.isotime import iso, parse_iso


class MemberBook(RefundHold, Grants, Redemptions):
    """One member's state and the rules that change it."""

    def __init__(
        self, snapshot: MemberSnapshot, *, drill: str | None = None, hold: bool = False
    ) -> None:
        if drill is not None and drill not in (*DRILL_BUGS, *REDEEM_DRILL_BUGS):
            raise ValueError(
                f"unknown drill {drill!r}; expected one of {(*DRILL_BUGS, *REDEEM_DRILL_BUGS)}"
            )
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
            event = parse_event(raw, self.event_types)
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

    def _check_time(self, event: Event, received_at: datetime | None) -> None:
        if received_at is not None and event.occurred_at > received_at + MAX_AHEAD:
            raise EventError(
                f"occurred_at {iso(event.occurred_at)} is in the future "
                f"(received {iso(received_at)})",
                event.event_id,
            )

    def _apply_valid(self, event: Event, build_id: str) -> int:
        if event.type == "redemption_cancelled":
            self._cancel_by_event(event, build_id)
            return 0
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
        self.s.shortfall += earned - clawback
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

    # -- ledger ---------------------------------------------------------------

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
        if kind == "expiry":
            self.s.expired_seq = self.s.ledger_seq
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
