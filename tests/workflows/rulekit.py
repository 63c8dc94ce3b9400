"""Shared helpers for the pure rules tests: event builders, invariants, an
independent reference model of the loyalty rules, and hypothesis strategies.

A scenario is a list of steps `(tag, payload, received_at)`:
- `valid`: a well-formed event for MEMBER (the rules decide: accepted, duplicate or
  rejected); `foreign` and `bad`: events known to be rejected before the rules run;
  `received_at` is when it reached the member, or None (no future check);
- `adjust`: payload `(delta, reason, at)`, a manual adjustment made at workflow time;
- `tier`: payload `(tier, cause, at)`, an approved tier change decided at workflow time;
- `timer`: payload `now`, the durable inactivity timer firing at workflow time.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from workflows.events import EventError
from workflows.rules import MemberBook, MemberSnapshot

MEMBER = "m1"
OTHER = "m2"
BUILD = "test-build"
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
AHEAD = DAY  # documented: an event may lie at most one day ahead of its receipt
INACTIVE = timedelta(days=365)  # documented inactivity period
GRANT = timedelta(days=90)  # documented: a granted tier holds 90 days of event time
HOLD_KEEP = 50  # documented: at most 50 refunds wait for the event they refer to
HELD = timedelta(days=30)  # documented: a held refund waits at most 30 days of event time
NOT_EVENTS = ("adjust", "timer", "tier")  # scenario steps that are no event
LIMIT = datetime(2090, 1, 1, tzinfo=UTC)  # scenario clocks stay well inside 2000..2100

# Independent copy of the documented tier table (name, threshold, multiplier %).
REF_TIERS = (
    ("Blue", 0, 100),
    ("Gold", 1_000, 125),
    ("Platinum", 3_000, 150),
    ("Diamond", 8_000, 200),
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def trip(eid: str, at: datetime, fare: int = 2_500, member: str = MEMBER) -> dict[str, Any]:
    return {
        "type": "trip_completed",
        "event_id": eid,
        "member_id": member,
        "occurred_at": iso(at),
        "fare_cents": fare,
    }


def purchase(eid: str, at: datetime, amount: int = 10_000, member: str = MEMBER) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": eid,
        "member_id": member,
        "occurred_at": iso(at),
        "amount_cents": amount,
    }


def refund(eid: str, at: datetime, refers_to: str, member: str = MEMBER) -> dict[str, Any]:
    return {
        "type": "refund",
        "event_id": eid,
        "member_id": member,
        "occurred_at": iso(at),
        "refers_to": refers_to,
    }


def ticket(eid: str, at: datetime, text: str = "help", member: str = MEMBER) -> dict[str, Any]:
    return {
        "type": "support_ticket",
        "event_id": eid,
        "member_id": member,
        "occurred_at": iso(at),
        "text": text,
    }


Step = tuple[str, Any, datetime | None]


def fresh(drill: str | None = None, member: str = MEMBER, *, hold: bool = True) -> MemberBook:
    """A new member under the current rules (`hold`: early refunds wait, from 0.3.0)."""
    return MemberBook(MemberSnapshot(member_id=member), drill=drill, hold=hold)


def apply_all(
    book: MemberBook, events: list[Any], received_at: datetime | None = None
) -> list[Any]:
    return [book.apply(raw, build_id=BUILD, received_at=received_at) for raw in events]


def events_of(items: list[Step]) -> list[Any]:
    """The raw events of a scenario (adjustments and timers left out)."""
    return [raw for tag, raw, _ in items if tag not in NOT_EVENTS]


def receipts_of(items: list[Step]) -> list[datetime | None]:
    """When each of `events_of(items)` reached the member."""
    return [received for tag, _, received in items if tag not in NOT_EVENTS]


def drive(book: MemberBook, items: list[Step]) -> MemberBook:
    """Run a scenario through a book without checking anything (as a workflow would)."""
    for tag, payload, received in items:
        if tag == "adjust":
            delta, reason, at = payload
            if book.check_adjustment(delta, reason) is None:
                book.adjust(delta, reason, at, BUILD)
        elif tag == "timer":
            book.expire_if_due(payload, BUILD)
        elif tag == "tier":
            tier, cause, at = payload
            if book.check_tier_grant(tier, cause) is None:
                book.grant_tier(tier, cause, at, BUILD)
        else:
            book.apply(payload, build_id=BUILD, received_at=received)
    return book


def state_of(book: MemberBook) -> dict[str, Any]:
    """A deep copy of everything the book carries (snapshot + parsed watermark)."""
    snap = copy.deepcopy(dataclasses.asdict(book.s))
    snap["_watermark"] = book.last_event_at
    return snap


def assert_one_line_reason(reason: object) -> None:
    assert isinstance(reason, str), reason
    assert reason.strip(), "empty reason"
    assert "\n" not in reason and "\r" not in reason, repr(reason)
    assert len(reason.splitlines()) == 1, repr(reason)
    # bad values are clipped: a reason is short whatever the input was
    assert len(reason) <= 300, repr(reason)


def assert_only_changed(before: dict[str, Any], after: dict[str, Any], allowed: set[str]) -> None:
    changed = {k for k in before if before[k] != after[k]}
    assert changed <= allowed, f"unexpected changes: {sorted(changed - allowed)}"


def assert_rejected_cleanly(book: MemberBook, raw: Any, received_at: datetime | None = None) -> str:
    """Apply `raw`, expect a rejection that only bumps the rejection counters."""
    before = state_of(book)
    outcome = book.apply(raw, build_id=BUILD, received_at=received_at)
    assert outcome.status == "rejected", outcome
    assert_one_line_reason(outcome.reason)
    after = state_of(book)
    assert_only_changed(before, after, {"events_rejected", "rejections"})
    assert after["events_rejected"] == before["events_rejected"] + 1
    assert after["rejections"][-1] == {"event_id": outcome.event_id, "reason": outcome.reason}
    return outcome.reason


def assert_invariants(book: MemberBook) -> None:
    s = book.s
    # balance == ledger_base + sum(ledger), in the state and in the public view
    assert book.ledger_sum() == s.points
    view = book.summary()
    assert view["ledger_base"] + sum(e["delta"] for e in view["ledger"]) == view["points"]
    assert view["points"] == s.points
    # bounded state
    assert len(s.ledger) <= 200
    assert len(view["ledger"]) <= 100
    assert len(s.rejections) <= 50
    assert s.events_rejected >= len(s.rejections)
    # every entry's running balance is consistent, seqs are consecutive and end at ledger_seq
    running = s.ledger_base
    for prev, entry in zip([None, *s.ledger], s.ledger, strict=False):
        running += entry["delta"]
        assert entry["balance"] == running
        assert entry["delta"] != 0 or entry["kind"] in ("tier", "goodwill_reward")
        if prev is not None:
            assert entry["seq"] == prev["seq"] + 1
    if s.ledger:
        assert s.ledger[-1]["seq"] == s.ledger_seq
        assert view["ledger"] == s.ledger[-100:]
    assert view["window_points"] == sum(s.window.values())
    assert all(v >= 0 for v in s.window.values())
    assert s.tier in ("Blue", "Gold", "Platinum", "Diamond")
    grant = s.tier_override
    if grant is not None:
        # a grant that still holds bounds the tier; one the event clock passed is gone
        assert book.last_event_at is None or book.last_event_at < ref_parse(grant["until"])
        order = [name for name, _, _ in REF_TIERS]
        rank, granted = order.index(s.tier), order.index(grant["tier"])
        assert rank >= granted if grant["bound"] == "floor" else rank <= granted
    for rejection in s.rejections:
        assert_one_line_reason(rejection["reason"])
    if book.drill is None:
        assert s.points >= 0


# -- independent reference model ----------------------------------------------


def ref_tier(window_points: int) -> str:
    name = "Blue"
    for tier, threshold, _ in REF_TIERS:
        if window_points >= threshold:
            name = tier
    return name


def ref_pct(tier: str) -> int:
    return {name: pct for name, _, pct in REF_TIERS}[tier]


def ref_parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class RefRecord:
    raw: dict[str, Any]
    day: int  # UTC calendar day (ordinal)
    earned: int | None  # None: not an earning event
    refunded: bool = False


@dataclass
class Ref:
    """A straightforward re-statement of the rules, written for the tests.

    Tags tell it what the generator built: `valid` (well-formed, for MEMBER),
    anything else is known to be rejected before the rules run.
    """

    points: int = 0
    lifetime: int = 0
    latest: datetime | None = None  # latest event time
    active: datetime | None = None  # latest adjustment: activity too
    grant: tuple[str, str, datetime] | None = None  # granted tier, floor|ceiling, until
    records: dict[str, RefRecord] = field(default_factory=dict)
    entries: list[tuple[str, str, int, str]] = field(default_factory=list)
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    held: list[dict[str, Any]] = field(default_factory=list)  # early refunds, oldest first

    def window_points(self) -> int:
        if self.latest is None:
            return 0
        first_day = self.latest.date().toordinal() - 90 + 1  # last 90 calendar days
        return sum(
            r.earned
            for r in self.records.values()
            if r.earned is not None and not r.refunded and r.day >= first_day
        )

    def earned_tier(self) -> str:
        return ref_tier(self.window_points())

    def granted(self) -> tuple[str, str, datetime] | None:
        """The tier grant, while the event clock has not reached its end."""
        if self.grant is None or (self.latest is not None and self.latest >= self.grant[2]):
            return None
        return self.grant

    def tier(self) -> str:
        earned, grant = self.earned_tier(), self.granted()
        if grant is None:
            return earned
        order = [name for name, _, _ in REF_TIERS]
        if grant[1] == "floor":
            return order[max(order.index(earned), order.index(grant[0]))]
        return order[min(order.index(earned), order.index(grant[0]))]

    def grant_tier(self, tier: str, cause: str, at: datetime) -> bool:
        """An approved tier change; False (and nothing changes) when it is not allowed."""
        order = [name for name, _, _ in REF_TIERS]
        if tier not in order or not cause.strip():
            return False
        start = max(at, self.latest) if self.latest is not None else at
        bound = "floor" if order.index(tier) >= order.index(self.earned_tier()) else "ceiling"
        self.grant = (tier, bound, start + GRANT)
        self._post("tier", cause, 0, at)
        return True

    def last_activity(self) -> datetime | None:
        """The latest of the latest event and the latest adjustment."""
        moments = [m for m in (self.latest, self.active) if m is not None]
        return max(moments) if moments else None

    def deadline(self) -> datetime | None:
        """When a positive balance expires for inactivity."""
        activity = self.last_activity()
        if activity is None or self.points <= 0:
            return None
        return activity + INACTIVE

    def _post(self, kind: str, cause: str, delta: int, at: datetime) -> None:
        self.points += delta
        self.entries.append((kind, cause, delta, iso(at)))

    def _move_to(self, moment: datetime) -> None:
        if self.latest is not None and moment <= self.latest:
            return
        deadline = self.deadline()
        if deadline is not None and moment > deadline:
            self._post("expiry", "inactivity", -self.points, deadline)
        self.latest = moment

    def _reject(self) -> str:
        self.rejected += 1
        return "rejected"

    def apply(self, tag: str, raw: Any, received_at: datetime | None = None) -> str:
        if tag != "valid":
            return self._reject()
        eid = raw["event_id"]
        moment = ref_parse(raw["occurred_at"])
        known = self.records[eid].raw if eid in self.records else None
        known = known or next((h for h in self.held if h["event_id"] == eid), None)
        if known is not None:
            if known == raw:
                self.duplicates += 1
                return "duplicate"
            return self._reject()
        if received_at is not None and moment - received_at > AHEAD:
            return self._reject()  # from the future
        if raw["type"] == "refund" and raw["refers_to"] not in self.records:
            # waits for its event (hold); a full hold rejects its oldest
            self.held.append(dict(raw))
            if len(self.held) > HOLD_KEEP:
                self.held.pop(0)
                self._reject()
            self._expire_held()
            return "held"
        status = self._apply_known(raw, moment)
        if status == "accepted":
            for waiting in [h for h in self.held if h["refers_to"] == eid]:
                self.held.remove(waiting)
                self._apply_known(waiting, ref_parse(waiting["occurred_at"]))
            self._expire_held()
        return status

    def _expire_held(self) -> None:
        for waiting in list(self.held):
            if self.latest is not None and ref_parse(waiting["occurred_at"]) < self.latest - HELD:
                self.held.remove(waiting)
                self._reject()

    def _apply_known(self, raw: dict[str, Any], moment: datetime) -> str:
        eid = raw["event_id"]
        day = moment.date().toordinal()
        kind = raw["type"]
        earned: int | None = None
        if kind == "refund":
            target = self.records.get(raw["refers_to"])
            if target is None or target.earned is None or target.refunded:
                return self._reject()
            self._move_to(moment)
            target.refunded = True
            clawback = min(target.earned, self.points)
            self.lifetime -= target.earned
            if clawback:
                self._post("refund", eid, -clawback, moment)
        elif kind == "support_ticket":
            self._move_to(moment)
        else:
            self._move_to(moment)
            amount = raw["fare_cents"] if kind == "trip_completed" else raw["amount_cents"]
            earned = amount // 100 * ref_pct(self.tier()) // 100
            self.lifetime += earned
            if earned:
                self._post("earn", eid, earned, moment)
        self.records[eid] = RefRecord(dict(raw), day, earned)
        self.processed += 1
        return "accepted"

    def adjust(self, delta: int, reason: str, at: datetime) -> bool:
        """A manual adjustment; False (and nothing changes) when it is not allowed."""
        if delta == 0 or abs(delta) > 1_000_000 or self.points + delta < 0:
            return False
        if not reason.strip():
            return False
        self.active = at if self.active is None else max(self.active, at)
        self._post("adjustment", reason, delta, at)
        return True

    def expire_if_due(self, now: datetime) -> bool:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self._post("expiry", "inactivity", -self.points, deadline)
        return True

    def assert_matches(self, book: MemberBook) -> None:
        view = book.summary()
        assert view["points"] == self.points
        assert view["lifetime_points"] == self.lifetime
        assert view["window_points"] == self.window_points()
        assert view["tier"] == self.tier()
        grant = self.granted()
        shown_grant = view["tier_override"]
        assert (shown_grant is None) == (grant is None)
        if grant is not None:
            assert (shown_grant["tier"], shown_grant["bound"]) == grant[:2]
            assert shown_grant["until"] == iso(grant[2])
        assert view["events_processed"] == self.processed
        assert view["events_rejected"] == self.rejected
        assert view["duplicates_ignored"] == self.duplicates
        assert view["last_event_at"] == (iso(self.latest) if self.latest else None)
        assert book.expiry_deadline() == self.deadline()
        shown = [(e["kind"], e["cause"], e["delta"], e["at"]) for e in view["ledger"]]
        assert shown == self.entries[len(self.entries) - len(shown) :]
        assert len(shown) == min(len(self.entries), 100)
        hidden = self.entries[: len(self.entries) - len(shown)]
        assert view["ledger_base"] == sum(delta for _, _, delta, _ in hidden)


# -- hypothesis strategies ----------------------------------------------------

amounts = st.one_of(st.integers(1, 199), st.integers(200, 400_000), st.just(5_000_000))

forward_steps = st.one_of(
    st.integers(0, 36 * 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 100).map(lambda d: timedelta(days=d)),
    # around the inactivity deadline, and well past it (a member returning after years)
    st.integers(365 * 86400 - 60, 366 * 86400).map(lambda s: timedelta(seconds=s)),
    st.integers(367, 900).map(lambda d: timedelta(days=d)),
)

# how long after its occurred_at an event reaches the member: mostly a little later;
# up to a day early is clock skew (accepted), more than a day early is refused
receipt_lags = st.one_of(
    st.integers(0, 2 * 86400),
    st.sampled_from([-86400, -86399, -86401, -86400 - 3600]),
    st.integers(-30 * 86400, 0),
).map(lambda s: timedelta(seconds=s))

# how far past "received + one day" an event lies; zero is the last accepted moment
beyond_ahead = st.one_of(
    st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(seconds=1)]),
    st.integers(-3600, 800 * 86400).map(lambda s: timedelta(seconds=s)),
)


def _malformed(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(
        [
            {k: v for k, v in base.items() if k != "occurred_at"},
            {**base, "amount_cents": -5},
            {**base, "amount_cents": 0},
            {**base, "amount_cents": True},
            {**base, "amount_cents": 12.5},
            {**base, "amount_cents": 5_000_001},
            {**base, "occurred_at": "2024-01-01T00:00:00"},
            {**base, "occurred_at": "1999-12-31T00:00:00Z"},
            {**base, "occurred_at": "2150-01-01T00:00:00\nZ"},
            {**base, "occurred_at": "9999-12-31T23:59:59-01:00"},
            {**base, "occurred_at": "yesterday"},
            {**base, "type": "teleport"},
            {**base, "event_id": ""},
            {**base, "event_id": "x\ny"},
            {**base, "member_id": "bad id"},
            # unreadable: content that cannot be fingerprinted
            {**base, "note": {1: "int key", "a": "str key"}},
            {**base, "note": {"a", "set"}},
            [base],
            None,
            "purchase",
            42,
        ]
    )


@st.composite
def scenarios(
    draw: st.DrawFn, min_ops: int = 0, max_ops: int = 40, *, adjustments: bool = False
) -> list[Step]:
    """Steps mixing valid, duplicate, colliding, foreign, out-of-order, far-ahead,
    from-the-future and malformed events; with `adjustments`, also manual
    adjustments and inactivity timers firing.

    Two clocks: `clock` is event time, `now` is workflow time (when events reach
    the member, when adjustments are made, when timers fire); `now` never goes back.
    Per scenario, events carry their receipt time, none, or a mix."""
    count = draw(st.integers(min_ops, max_ops))
    receipts = draw(st.sampled_from(["none", "all", "some"]))
    clock = T0 + timedelta(days=draw(st.integers(0, 3 * 365)))
    now = clock
    items: list[Step] = []
    valid_ids: list[str] = []
    names = ["trip"] * 4 + ["purchase"] * 4 + ["refund"] * 3
    names += ["ticket", "resend", "resend", "collide", "foreign", "far", "ahead", "wait"]
    names += ["bad", "old"]
    if adjustments:
        names += ["adjust"] * 3 + ["timer"] * 3 + ["tier"] * 2
    ops = st.sampled_from(names)

    def received() -> datetime | None:
        if receipts == "none" or (receipts == "some" and draw(st.booleans())):
            return None
        return now

    for n in range(count):
        op = draw(ops)
        eid = f"e{n}"
        if op in ("trip", "purchase", "ticket", "refund"):
            clock = min(clock + draw(forward_steps), LIMIT)
            at = clock
            now = min(max(now, at + draw(receipt_lags)), LIMIT)
            if op == "trip":
                raw = trip(eid, at, draw(amounts))
            elif op == "purchase":
                raw = purchase(eid, at, draw(amounts))
            elif op == "ticket":
                raw = ticket(eid, at, draw(st.text(max_size=20)))
            else:
                target = draw(st.sampled_from([*valid_ids, "unknown-id"]))
                raw = refund(eid, at, target)
            items.append(("valid", raw, received()))
            valid_ids.append(eid)
        elif op == "old":  # out of order, back in time
            at = clock - timedelta(days=draw(st.integers(0, 200)), hours=draw(st.integers(0, 23)))
            items.append(("valid", purchase(eid, at, draw(amounts)), received()))
            valid_ids.append(eid)
        elif op == "far":  # long after the latest event, ahead of the event clock
            at = clock + timedelta(days=366, seconds=draw(st.integers(1, 400 * 86400)))
            items.append(("valid", trip(eid, at, draw(amounts)), received()))
            valid_ids.append(eid)
        elif op == "ahead":  # around the limit of how far ahead of its receipt it may be
            at = now + AHEAD + draw(beyond_ahead)
            items.append(("valid", purchase(eid, at, draw(amounts)), received()))
            valid_ids.append(eid)
        elif op == "wait":  # workflow time passes without events
            now = min(now + timedelta(seconds=draw(st.integers(1, 800 * 86400))), LIMIT)
        elif op in ("resend", "collide"):
            previous = [raw for tag, raw, _ in items if tag == "valid"]
            if not previous:
                continue
            raw = copy.deepcopy(draw(st.sampled_from(previous)))
            if op == "collide":
                moved = ref_parse(raw["occurred_at"]) + timedelta(seconds=1)
                raw["occurred_at"] = iso(moved)
            items.append(("valid", raw, received()))
        elif op == "foreign":
            items.append(("foreign", purchase(eid, clock, draw(amounts), member=OTHER), received()))
        elif op == "bad":
            items.append(("bad", draw(_malformed(purchase(eid, clock, 1_000))), received()))
        elif op == "adjust":
            now = min(now + timedelta(seconds=draw(st.integers(0, 3 * 86400))), LIMIT)
            delta = draw(
                st.one_of(
                    st.integers(1, 3_000),
                    st.integers(-3_000, -1),
                    st.sampled_from([0, 1_000_001, -1_000_001]),
                )
            )
            reason = draw(st.sampled_from(["goodwill", "spent at a partner", " "]))
            items.append(("adjust", (delta, reason, now), None))
        elif op == "tier":  # an approved tier change
            now = min(now + timedelta(seconds=draw(st.integers(0, 3 * 86400))), LIMIT)
            tier = draw(st.sampled_from(["Blue", "Gold", "Platinum", "Diamond", "Bronze"]))
            cause = draw(st.sampled_from([f"{MEMBER}:k{n}:0", " "]))
            items.append(("tier", (tier, cause, now), None))
        elif op == "timer":  # the inactivity timer fires, maybe after a long quiet time
            now = min(now + timedelta(seconds=draw(st.integers(0, 800 * 86400))), LIMIT)
            items.append(("timer", now, None))
    return items


def check_parse_contract(raw: Any) -> Any:
    """parse_event either returns an Event or raises EventError with a one-line reason."""
    from workflows.events import Event, parse_event

    try:
        event = parse_event(raw)
    except EventError as error:
        assert_one_line_reason(error.reason)
        assert str(error) == error.reason
        return error
    assert isinstance(event, Event)
    assert event.type in ("trip_completed", "purchase", "refund", "support_ticket")
    assert event.occurred_at.tzinfo is not None
    assert datetime(2000, 1, 1, tzinfo=UTC) <= event.occurred_at < datetime(2100, 1, 1, tzinfo=UTC)
    if event.type in ("trip_completed", "purchase"):
        assert 1 <= event.amount_cents <= 5_000_000
    assert len(event.fingerprint) == 16
    return event
