"""Pure loyalty rules: MemberBook, MemberSnapshot, replay (no Temporal)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workflows.rulekit import (
    BUILD,
    DAY,
    LIMIT,
    MEMBER,
    OTHER,
    REF_TIERS,
    T0,
    Ref,
    Step,
    amounts,
    apply_all,
    assert_invariants,
    assert_one_line_reason,
    assert_only_changed,
    assert_rejected_cleanly,
    drive,
    events_of,
    fresh,
    iso,
    purchase,
    receipts_of,
    ref_pct,
    ref_tier,
    refund,
    scenarios,
    state_of,
    ticket,
    trip,
)
from workflows.rules import (
    DRILL_BUGS,
    LEDGER_KEEP,
    MAX_ADJUSTMENT,
    MemberBook,
    MemberSnapshot,
    multiplier_pct,
    replay,
    tier_for,
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SOME = settings(SETTINGS, max_examples=60)
FEW = settings(SETTINGS, max_examples=40)


def run(
    items: list[Step], drill: str | None = None, *, check: bool = False
) -> tuple[MemberBook, Ref, list]:
    """Apply the scenario to a fresh book and the reference model; with `check`,
    compare them and the invariants after every step, else only at the end.
    `outcomes` has one entry per step (None for adjustments, timers and tier grants)."""
    book, ref = fresh(drill), Ref()
    outcomes: list[Any] = []
    for tag, payload, received in items:
        outcome = None
        if tag == "adjust":
            delta, reason, at = payload
            if ref.latest is None:
                # no deadline without an event: test_bug_grant_before_any_event_never_expires
                outcomes.append(None)
                continue
            allowed = ref.adjust(delta, reason, at)
            problem = book.check_adjustment(delta, reason)
            assert (problem is None) == allowed, (delta, reason, problem)
            if allowed:
                book.adjust(delta, reason, at, BUILD)
            else:
                assert_one_line_reason(problem)
                with pytest.raises(ValueError):
                    book.adjust(delta, reason, at, BUILD)
        elif tag == "timer":
            assert book.expire_if_due(payload, BUILD) == ref.expire_if_due(payload)
        elif tag == "tier":
            tier, cause, at = payload
            allowed = ref.grant_tier(tier, cause, at)
            problem = book.check_tier_grant(tier, cause)
            assert (problem is None) == allowed, (tier, cause, problem)
            if allowed:
                entry = book.grant_tier(tier, cause, at, BUILD)
                assert (entry["kind"], entry["delta"], entry["tier"]) == ("tier", 0, tier)
                assert book.s.tier == ref.tier() == tier  # at the granted tier right away
            else:
                assert_one_line_reason(problem)
                before = state_of(book)
                with pytest.raises(ValueError):
                    book.grant_tier(tier, cause, at, BUILD)
                assert state_of(book) == before
        else:
            outcome = book.apply(payload, build_id=BUILD, received_at=received)
            expected = ref.apply(tag, payload, received)
            assert outcome.status == expected, (payload, received, outcome)
            if outcome.status == "rejected":
                assert_one_line_reason(outcome.reason)
        outcomes.append(outcome)
        if check:
            if drill is None:
                ref.assert_matches(book)
            assert_invariants(book)
    if drill is None:
        ref.assert_matches(book)
    assert_invariants(book)
    return book, ref, outcomes


def accepted_events(items: list[Step], outcomes: list[Any]) -> list[dict[str, Any]]:
    return [
        raw
        for (_, raw, _), out in zip(items, outcomes, strict=True)
        if out is not None and out.status == "accepted"
    ]


# -- the tables ---------------------------------------------------------------


def test_tier_table_matches_documented_thresholds() -> None:
    for name, threshold, pct in REF_TIERS:
        assert tier_for(threshold) == name
        assert multiplier_pct(name) == pct
        if threshold:
            assert tier_for(threshold - 1) != name
    assert tier_for(0) == "Blue"
    assert tier_for(10**9) == "Diamond"
    with pytest.raises(ValueError):
        multiplier_pct("Bronze")


@given(st.integers(0, 20_000))
@SETTINGS
def test_tier_for_agrees_with_reference(points: int) -> None:
    assert tier_for(points) == ref_tier(points)


def test_unknown_drill_is_refused() -> None:
    with pytest.raises(ValueError):
        MemberBook(MemberSnapshot(member_id=MEMBER), drill="set-fire")


# -- the reference model over arbitrary sequences -----------------------------


@given(scenarios(adjustments=True))
@SETTINGS
def test_rules_match_reference_model_and_keep_invariants(items: list[Step]) -> None:
    run(items, check=True)


@given(scenarios(min_ops=200, max_ops=320, adjustments=True))
@settings(FEW, max_examples=10)
def test_long_sequences_trim_the_ledger_and_stay_balanced(items: list[Step]) -> None:
    book, _, _ = run(items, check=True)
    assert len(book.s.ledger) <= 2 * LEDGER_KEEP


@given(st.lists(amounts, min_size=201, max_size=450), st.integers(0, 3))
@settings(FEW, max_examples=12)
def test_many_ledger_entries_fold_into_ledger_base(fares: list[int], refund_every: int) -> None:
    book, ref = fresh(), Ref()
    at = T0
    for n, fare in enumerate(fares):
        at += timedelta(hours=3)
        raw = trip(f"t{n}", at, max(fare, 100))
        assert book.apply(raw, build_id=BUILD).status == ref.apply("valid", raw) == "accepted"
        if refund_every and n % (refund_every + 3) == 0:
            raw = refund(f"r{n}", at, f"t{n}")
            assert book.apply(raw, build_id=BUILD).status == ref.apply("valid", raw)
        assert_invariants(book)
    ref.assert_matches(book)
    assert book.s.ledger_seq > 2 * LEDGER_KEEP
    assert book.s.ledger_base != 0
    view = book.summary()
    assert len(view["ledger"]) == LEDGER_KEEP
    assert view["ledger"][-1]["seq"] == book.s.ledger_seq
    assert view["ledger_base"] + sum(e["delta"] for e in view["ledger"]) == view["points"]


def test_ledger_trim_boundaries() -> None:
    book = fresh()
    for n in range(1, 1_001):
        book.apply(purchase(f"p{n}", T0 + n * timedelta(minutes=1), 100), build_id=BUILD)
        assert len(book.s.ledger) <= 2 * LEDGER_KEEP
        assert book.ledger_sum() == book.s.points == n  # Blue: 1 point per unit
        view = book.summary()
        assert len(view["ledger"]) == min(n, LEDGER_KEEP)
        assert view["ledger_base"] == n - len(view["ledger"])
        assert [e["seq"] for e in view["ledger"]] == list(range(n - len(view["ledger"]) + 1, n + 1))


def test_seen_window_is_bounded() -> None:
    book = fresh()
    for n in range(6_000):
        book.apply(ticket(f"k{n}", T0 + n * timedelta(seconds=1)), build_id=BUILD)
    assert len(book.s.seen) <= 4_096 * 5 // 4
    assert "k5999" in book.s.seen
    assert book.s.events_processed == 6_000


# -- duplicates and id collisions ---------------------------------------------


@given(scenarios(min_ops=1), st.data())
@SOME
def test_resending_an_accepted_event_changes_only_duplicates_ignored(
    items: list[Step], data: st.DataObject
) -> None:
    book, _, outcomes = run(items)
    accepted = accepted_events(items, outcomes)
    if not accepted:
        return
    raw = copy.deepcopy(data.draw(st.sampled_from(accepted)))
    before = state_of(book)
    # a resend is recognised whenever it arrives
    received = data.draw(st.sampled_from([None, T0, LIMIT]))
    outcome = book.apply(raw, build_id=BUILD, received_at=received)
    assert outcome.status == "duplicate"
    assert outcome.event_id == raw["event_id"]
    after = state_of(book)
    assert_only_changed(before, after, {"duplicates_ignored"})
    assert after["duplicates_ignored"] == before["duplicates_ignored"] + 1
    # key order does not matter: it is the same event
    reordered = dict(reversed(list(raw.items())))
    assert book.apply(reordered, build_id=BUILD).status == "duplicate"


@given(scenarios(min_ops=1), st.data())
@SOME
def test_same_id_with_different_content_is_rejected(items: list[Step], data: st.DataObject) -> None:
    book, _, outcomes = run(items)
    accepted = accepted_events(items, outcomes)
    if not accepted:
        return
    raw = copy.deepcopy(data.draw(st.sampled_from(accepted)))
    change = data.draw(st.sampled_from(["time", "extra", "type"]))
    if change == "time":
        raw["occurred_at"] = iso(datetime.fromisoformat(raw["occurred_at"]) - timedelta(seconds=1))
    elif change == "extra":
        raw["note"] = "resent with a twist"
    else:
        raw = ticket(
            raw["event_id"], datetime.fromisoformat(raw["occurred_at"]), "re-used \u2603 id"
        )
    reason = assert_rejected_cleanly(book, raw)
    assert raw["event_id"] in reason and "already used" in reason


def test_duplicate_of_rejected_event_is_not_a_duplicate() -> None:
    book = fresh()
    apply_all(book, [ticket("k1", T0)])
    bad = refund("r1", T0, "k1")  # a ticket earns nothing to refund
    assert_rejected_cleanly(book, bad)
    assert_rejected_cleanly(book, bad)
    assert book.s.duplicates_ignored == 0


# -- refunds ------------------------------------------------------------------


def test_a_refund_before_its_purchase_waits_and_then_claws_back_once() -> None:
    """Out of order (the refund first) ends where in order does, and says so meanwhile."""
    early = fresh()
    held = early.apply(refund("r1", T0 + DAY, "p1"), build_id=BUILD)
    assert held.status == "held"
    view = early.summary()
    assert view["held"] == [
        {"event_id": "r1", "refers_to": "p1", "occurred_at": "2024-01-02T12:00:00Z"}
    ]
    assert view["events_rejected"] == 0 and view["events_processed"] == 0
    assert early.apply(refund("r1", T0 + DAY, "p1"), build_id=BUILD).status == "duplicate"
    clash = {**refund("r1", T0 + 2 * DAY, "p1")}
    assert early.apply(clash, build_id=BUILD).status == "rejected"
    assert early.apply(purchase("p1", T0, 50_000), build_id=BUILD).status == "accepted"
    assert [o.status for o in early.released] == ["accepted"]
    in_order = fresh()
    apply_all(in_order, [purchase("p1", T0, 50_000), refund("r1", T0 + DAY, "p1")])
    assert early.summary()["held"] == []
    for key in ("points", "lifetime_points", "window_points", "tier", "events_processed"):
        assert early.summary()[key] == in_order.summary()[key], key
    assert early.s.points == 0 and early.s.ledger[-1]["kind"] == "refund"
    # once applied, a resend is a duplicate and a second refund is refused
    assert early.apply(refund("r1", T0 + DAY, "p1"), build_id=BUILD).status == "duplicate"
    assert "already refunded" in assert_rejected_cleanly(early, refund("r2", T0 + DAY, "p1"))


def test_a_held_refund_is_rejected_when_its_event_never_comes_or_the_hold_is_full() -> None:
    book = fresh()
    assert book.apply(refund("r1", T0, "ghost"), build_id=BUILD).status == "held"
    # 30 days of event time later, with no "ghost": rejected with the reason
    book.apply(trip("t1", T0 + 31 * DAY, 1_000), build_id=BUILD)
    assert book.summary()["held"] == []
    assert "never arrived" in book.s.rejections[-1]["reason"]
    assert book.s.events_rejected == 1
    full = fresh()
    for n in range(51):
        assert full.apply(refund(f"r{n}", T0, f"p{n}"), build_id=BUILD).status == "held"
    assert len(full.summary()["held"]) == 50
    assert full.s.rejections[-1]["event_id"] == "r0"
    assert "50 refunds were waiting" in full.s.rejections[-1]["reason"]
    # a held refund whose event turns out to earn nothing is rejected when it arrives
    book.apply(refund("r9", T0 + 31 * DAY, "k9"), build_id=BUILD)
    book.apply(ticket("k9", T0 + 31 * DAY), build_id=BUILD)
    assert "earned no points" in book.s.rejections[-1]["reason"]
    assert book.summary()["held"] == []


def test_builds_before_0_3_0_reject_a_refund_before_its_purchase() -> None:
    old = fresh(hold=False)
    assert "unknown event" in assert_rejected_cleanly(old, refund("r1", T0, "p1"))


def test_refund_claws_back_exactly_what_the_event_earned() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 123_456), trip("t1", T0 + DAY, 50_000)])
    assert book.s.points == 1_234 + 625  # Gold after the purchase: 500 * 125%
    outcome = book.apply(refund("r1", T0 + 2 * DAY, "t1"), build_id=BUILD)
    assert outcome.status == "accepted"
    assert book.s.points == 1_234
    assert book.s.lifetime_points == 1_234
    last = book.s.ledger[-1]
    assert (last["kind"], last["cause"], last["delta"], last["at"]) == (
        "refund",
        "r1",
        -625,
        iso(T0 + 2 * DAY),
    )
    assert_invariants(book)


def test_refund_never_goes_below_zero_but_lifetime_drops_by_earned() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 50_000)])
    book.adjust(-400, "spent at the partner shop", T0, BUILD)
    assert book.s.points == 100
    book.apply(refund("r1", T0 + DAY, "p1"), build_id=BUILD)
    assert book.s.points == 0
    assert book.s.lifetime_points == 0
    assert book.s.ledger[-1]["delta"] == -100
    # a refund when the balance is already zero posts nothing
    apply_all(book, [purchase("p2", T0 + DAY, 20_000)])
    book.adjust(-200, "spent", T0 + DAY, BUILD)
    seq = book.s.ledger_seq
    book.apply(refund("r2", T0 + 2 * DAY, "p2"), build_id=BUILD)
    assert book.s.ledger_seq == seq
    assert book.s.points == 0
    assert book.s.lifetime_points == 0
    assert_invariants(book)


def test_refund_of_an_event_that_earned_zero_points_is_accepted_and_moves_nothing() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 99)])
    assert book.s.points == 0 and book.s.ledger == []
    assert book.apply(refund("r1", T0, "p1"), build_id=BUILD).status == "accepted"
    assert book.s.points == 0 and book.s.ledger == []


@pytest.mark.parametrize(
    ("events", "bad", "words"),
    [
        ([], refund("r1", T0, "p404"), "unknown event"),
        ([purchase("p1", T0)], refund("r1", T0, "p404"), "unknown event"),
        (
            [purchase("p1", T0), refund("r1", T0, "p1")],
            refund("r2", T0, "r1"),
            "earned no points",
        ),
        ([purchase("p1", T0), refund("r1", T0, "p1")], refund("r2", T0, "p1"), "already refunded"),
        ([ticket("k1", T0)], refund("r1", T0, "k1"), "earned no points"),
        ([purchase("p1", T0)], refund("r1", T0, "r1"), "unknown event"),
    ],
)
def test_invalid_refunds_are_rejected_and_change_nothing(
    events: list[dict[str, Any]], bad: dict[str, Any], words: str
) -> None:
    # a refund of an event not seen yet is rejected by builds before 0.3.0 (no hold)
    book = fresh(hold=words != "unknown event")
    apply_all(book, events)
    reason = assert_rejected_cleanly(book, bad)
    assert words in reason


def test_rejected_refund_does_not_move_time_or_expire() -> None:
    book = fresh(hold=False)
    apply_all(book, [purchase("p1", T0, 10_000)])
    late = T0 + timedelta(days=365, hours=12)
    assert_rejected_cleanly(book, refund("r1", late, "nope"))
    assert book.s.points == 100
    assert book.last_event_at == T0


@given(scenarios(min_ops=1), st.data())
@SOME
def test_refund_property(items: list[Step], data: st.DataObject) -> None:
    book, ref, outcomes = run(items)
    earning = [
        raw["event_id"]
        for raw in accepted_events(items, outcomes)
        if raw["type"] in ("trip_completed", "purchase")
    ]
    if not earning:
        return
    target = data.draw(st.sampled_from(earning))
    earned = ref.records[target].earned
    assert earned is not None
    at = book.last_event_at
    assert at is not None
    raw = refund("refund-under-test", at, target)
    before = state_of(book)
    outcome = book.apply(raw, build_id=BUILD)
    if ref.records[target].refunded:
        assert outcome.status == "rejected"
        assert "already refunded" in (outcome.reason or "")
        return
    assert outcome.status == "accepted"
    assert book.s.points == before["points"] - min(earned, before["points"])
    assert book.s.lifetime_points == before["lifetime_points"] - earned
    # and a second refund of the same event is refused
    assert_rejected_cleanly(book, refund("refund-again", at, target))


# -- tiers and multipliers ----------------------------------------------------


@pytest.mark.parametrize(("tier", "base_cents"), [(name, t) for name, t, _ in REF_TIERS])
def test_multiplier_applies_by_tier(tier: str, base_cents: int) -> None:
    book = fresh()
    if base_cents:
        book.apply(purchase("reach", T0, base_cents * 100), build_id=BUILD)
    assert book.s.tier == tier
    before = book.s.points
    book.apply(trip("t1", T0 + timedelta(minutes=1), 100_00), build_id=BUILD)  # 100 units
    assert (
        book.s.points - before == {"Blue": 100, "Gold": 125, "Platinum": 150, "Diamond": 200}[tier]
    )
    # fractions of a unit never earn, rounding of the multiplied amount is down
    before = book.s.points
    book.apply(trip("t2", T0 + timedelta(minutes=2), 199), build_id=BUILD)
    assert book.s.points - before == 1 * ref_pct(tier) // 100


def test_tier_thresholds_and_window_edge() -> None:
    book = fresh()
    book.apply(purchase("p1", T0, 99_900), build_id=BUILD)
    assert (book.s.tier, book.window_points) == ("Blue", 999)
    book.apply(purchase("p2", T0, 100), build_id=BUILD)
    assert (book.s.tier, book.window_points) == ("Gold", 1_000)
    # day 89 after: the first day is still within the trailing 90 days
    book.apply(ticket("k1", T0 + 89 * DAY), build_id=BUILD)
    assert book.s.tier == "Gold"
    # day 90: it slides out
    book.apply(ticket("k2", T0 + 90 * DAY), build_id=BUILD)
    assert (book.s.tier, book.window_points) == ("Blue", 0)
    assert book.s.lifetime_points == 1_000 and book.s.points == 1_000


def test_refund_drops_tier() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 100_000), purchase("p2", T0, 5_000)])
    assert book.s.tier == "Gold"
    book.apply(refund("r1", T0 + DAY, "p1"), build_id=BUILD)
    assert book.s.tier == "Blue"
    assert book.window_points == 62  # p2 earned at Gold: 50 * 125%


def test_out_of_order_event_inside_window_counts_outside_does_not() -> None:
    book = fresh()
    apply_all(book, [ticket("k0", T0 + 200 * DAY)])
    book.apply(purchase("old", T0 + 50 * DAY, 500_000), build_id=BUILD)  # 150 days before
    assert book.s.tier == "Blue" and book.window_points == 0
    assert book.s.points == 5_000 and book.s.lifetime_points == 5_000
    book.apply(purchase("recent", T0 + 150 * DAY, 300_000), build_id=BUILD)  # 50 days before
    assert book.s.tier == "Platinum" and book.window_points == 3_000
    assert book.last_event_at == T0 + 200 * DAY


@st.composite
def earning_sequences(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 40))
    clock = T0
    events = []
    for n in range(count):
        step = draw(st.integers(-150 * 24, 60 * 24))  # hours; negative = out of order
        at = clock + timedelta(hours=step)
        clock = max(clock, at)
        make = draw(st.sampled_from([trip, purchase]))
        events.append(make(f"e{n}", at, draw(st.integers(100, 300_000))))
    return events


@given(earning_sequences())
@SETTINGS
def test_tier_follows_trailing_90_day_window(events: list[dict[str, Any]]) -> None:
    """Independent check: recompute each event's points from the tier in force, and
    the final tier from the points earned in the last 90 days of event time."""
    book = fresh()
    earned_by: dict[str, int] = {}
    moments: dict[str, datetime] = {}
    latest: datetime | None = None
    for raw in events:
        moment = datetime.fromisoformat(raw["occurred_at"])
        latest = moment if latest is None else max(latest, moment)
        in_window = sum(
            pts for eid, pts in earned_by.items() if (latest.date() - moments[eid].date()).days < 90
        )
        tier_in_force = ref_tier(in_window)
        amount = raw.get("fare_cents", raw.get("amount_cents"))
        expected = amount // 100 * ref_pct(tier_in_force) // 100
        before = book.s.points
        assert book.apply(raw, build_id=BUILD).status == "accepted"
        assert book.s.points - before == expected
        earned_by[raw["event_id"]] = expected
        moments[raw["event_id"]] = moment
    assert latest is not None
    window = sum(
        pts for eid, pts in earned_by.items() if (latest.date() - moments[eid].date()).days < 90
    )
    assert book.window_points == window
    assert book.s.tier == tier_for(window) == ref_tier(window)
    assert book.s.lifetime_points == sum(earned_by.values())


# -- expiry -------------------------------------------------------------------


def test_expiry_after_365_days_without_events() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 50_000), ticket("k1", T0 + 100 * DAY)])
    last = T0 + 100 * DAY
    # exactly at the deadline: nothing expires yet
    book.apply(ticket("k2", last + 365 * DAY), build_id=BUILD)
    assert book.s.points == 500
    last = last + 365 * DAY
    book.apply(purchase("p2", last + 365 * DAY + timedelta(seconds=1), 10_000), build_id=BUILD)
    expiry = [e for e in book.s.ledger if e["kind"] == "expiry"]
    assert len(expiry) == 1
    assert (expiry[0]["cause"], expiry[0]["delta"], expiry[0]["at"]) == (
        "inactivity",
        -500,
        iso(last + 365 * DAY),
    )
    assert book.s.points == 100  # the new event still earns after the expiry
    assert book.s.ledger[-1]["kind"] == "earn"
    assert book.s.lifetime_points == 600
    assert_invariants(book)


@given(scenarios(min_ops=1, adjustments=True), st.integers(1, 86400))
@SOME
def test_expiry_property(items: list[Step], late_seconds: int) -> None:
    """A positive balance expires, dated at the deadline, when an event comes more
    than 365 days after the latest activity (event or adjustment), not before."""
    book, ref, _ = run(items)
    last = book.last_event_at
    if last is None:
        return
    activity = max(last, ref.active) if ref.active else last
    deadline = activity + timedelta(days=365)
    points, seq = book.s.points, book.s.ledger_seq
    assert book.expiry_deadline() == (deadline if points > 0 else None)
    # exactly at the deadline nothing expires
    on_time = copy.deepcopy(book)
    assert on_time.apply(ticket("on-time", deadline), build_id=BUILD).status == "accepted"
    assert (on_time.s.points, on_time.s.ledger_seq) == (points, seq)
    # a moment later the whole balance does
    book.apply(ticket("wake-up", deadline + timedelta(seconds=late_seconds)), build_id=BUILD)
    assert book.s.points == 0
    if points > 0:
        entry = book.s.ledger[-1]
        assert entry["seq"] == seq + 1
        assert (entry["kind"], entry["delta"], entry["at"]) == ("expiry", -points, iso(deadline))
    else:
        assert book.s.ledger_seq == seq
    assert_invariants(book)


def test_expire_if_due_timer() -> None:
    book = fresh()
    assert book.expiry_deadline() is None
    apply_all(book, [purchase("p1", T0, 30_000)])
    deadline = T0 + 365 * DAY
    assert book.expiry_deadline() == deadline
    assert not book.expire_if_due(deadline - timedelta(seconds=1), BUILD)
    assert book.s.points == 300
    assert book.expire_if_due(deadline + 5 * DAY, BUILD)
    assert book.s.points == 0
    assert book.s.ledger[-1]["at"] == iso(deadline)
    assert book.expiry_deadline() is None
    assert not book.expire_if_due(deadline + 10 * DAY, BUILD)
    # an event after the timer fired does not expire the (empty) balance again
    book.apply(purchase("p2", deadline + DAY, 10_000), build_id=BUILD)
    assert [e["kind"] for e in book.s.ledger] == ["earn", "expiry", "earn"]
    assert_invariants(book)


def test_adjustment_counts_as_activity_for_event_time_expiry() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    granted = T0 + 200 * DAY
    book.adjust(50, "goodwill", granted, BUILD)
    assert book.s.active_at == iso(granted)
    assert book.expiry_deadline() == granted + 365 * DAY
    # past the event deadline but within a year of the grant: nothing expires
    book.apply(ticket("k1", T0 + 365 * DAY + timedelta(seconds=1)), build_id=BUILD)
    assert book.s.points == 150
    assert [e["kind"] for e in book.s.ledger] == ["earn", "adjustment"]
    # the ticket moved the event time on: the deadline follows it
    assert book.expiry_deadline() == T0 + 365 * DAY + timedelta(seconds=1) + 365 * DAY
    late = T0 + 730 * DAY + timedelta(seconds=2)
    book.apply(trip("t1", late, 2_500), build_id=BUILD)
    expiry = book.s.ledger[-2]
    assert (expiry["kind"], expiry["delta"], expiry["at"]) == (
        "expiry",
        -150,
        iso(T0 + 730 * DAY + timedelta(seconds=1)),
    )
    assert book.s.points == 25
    assert_invariants(book)


def test_expiry_deadline_is_a_year_after_the_latest_grant() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    granted = T0 + 100 * DAY
    book.adjust(20, "goodwill", granted, BUILD)
    deadline = granted + 365 * DAY
    assert book.expiry_deadline() == deadline
    # an event exactly at the deadline does not expire anything
    on_time = copy.deepcopy(book)
    on_time.apply(ticket("k0", deadline), build_id=BUILD)
    assert on_time.s.points == 120
    # a later grant moves the deadline on
    regranted = copy.deepcopy(book)
    regranted.adjust(1, "goodwill", granted + 30 * DAY, BUILD)
    assert regranted.expiry_deadline() == deadline + 30 * DAY
    # one second later the whole balance expires, dated at the deadline
    book.apply(ticket("k1", deadline + timedelta(seconds=1)), build_id=BUILD)
    assert book.s.points == 0
    assert (book.s.ledger[-1]["kind"], book.s.ledger[-1]["at"]) == ("expiry", iso(deadline))


def test_adjustment_before_the_latest_event_does_not_shorten_the_deadline() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0 + 100 * DAY, 10_000)])
    book.adjust(-40, "spent", T0, BUILD)  # dated before the latest event
    assert book.s.active_at == iso(T0)
    assert book.expiry_deadline() == T0 + 465 * DAY
    book.apply(ticket("k1", T0 + 465 * DAY), build_id=BUILD)
    assert book.s.points == 60


def test_refused_adjustment_is_not_activity() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    with pytest.raises(ValueError):
        book.adjust(-1_000, "too much", T0 + 300 * DAY, BUILD)
    assert book.s.active_at is None
    assert book.expiry_deadline() == T0 + 365 * DAY


def test_timer_honours_the_latest_grant() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    granted = T0 + 300 * DAY
    book.adjust(5, "goodwill", granted, BUILD)
    assert not book.expire_if_due(T0 + 365 * DAY + DAY, BUILD)
    assert not book.expire_if_due(granted + 365 * DAY - timedelta(seconds=1), BUILD)
    assert book.s.points == 105
    assert book.expire_if_due(granted + 365 * DAY + timedelta(seconds=1), BUILD)
    assert book.s.points == 0
    assert book.s.ledger[-1]["at"] == iso(granted + 365 * DAY)
    assert book.expiry_deadline() is None


def test_grant_after_timer_expiry_is_not_expired_again() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    deadline = T0 + 365 * DAY
    assert book.expire_if_due(deadline + timedelta(hours=1), BUILD)
    granted = deadline + timedelta(hours=2)
    book.adjust(500, "goodwill", granted, BUILD)
    assert book.expiry_deadline() == granted + 365 * DAY
    assert book.apply(trip("t1", deadline + DAY, 2_500), build_id=BUILD).status == "accepted"
    assert [e["kind"] for e in book.s.ledger] == ["earn", "expiry", "adjustment", "earn"]
    assert book.s.points == 525
    assert_invariants(book)


@given(
    st.integers(1, 2_000),
    st.lists(st.integers(0, 500 * 86400), min_size=1, max_size=6),
    st.integers(-365 * 86400, 900 * 86400),
)
@SOME
def test_deadline_is_a_year_after_the_latest_event_or_grant(
    first: int, gaps: list[int], grant_offset: int
) -> None:
    """Independent of the reference model: with one grant among events, the balance
    survives exactly while every gap between activities is at most 365 days."""
    book = fresh()
    book.apply(purchase("p0", T0, first * 100), build_id=BUILD)
    granted = T0 + timedelta(days=365, seconds=grant_offset)
    book.adjust(7, "goodwill", granted, BUILD)
    moments = list(itertools.accumulate((timedelta(seconds=g) for g in gaps), initial=T0))[1:]
    for n, moment in enumerate(moments):
        book.apply(ticket(f"k{n}", moment), build_id=BUILD)
    activity = max(moments[-1], granted)
    assert book.expiry_deadline() == (activity + 365 * DAY if book.s.points else None)
    # it survives iff no event came more than a year after the latest activity before it
    survived = all(
        moment <= max(previous, granted) + 365 * DAY
        for previous, moment in zip([T0, *moments], moments, strict=False)
    )
    assert (book.s.points == first + 7) == survived
    assert_invariants(book)


# -- determinism and continue-as-new -------------------------------------------


@given(scenarios())
@SOME
def test_replay_is_deterministic(items: list[Step]) -> None:
    events, receipts = events_of(items), receipts_of(items)
    pristine = copy.deepcopy(events)
    first = replay(MEMBER, events, build_id=BUILD, received_at=receipts).summary()
    second = replay(MEMBER, events, build_id=BUILD, received_at=list(receipts)).summary()
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert events == pristine  # replay does not mutate its input
    other = replay(MEMBER, events, build_id="other", received_at=receipts).summary()
    assert other["points"] == first["points"]
    # replay applies each event with its own receipt time
    assert drive(fresh(), items).summary() == first


@given(scenarios())
@SOME
def test_replay_without_receipts_refuses_nothing_for_being_ahead(items: list[Step]) -> None:
    events = events_of(items)
    ref = Ref()
    for tag, raw, _ in items:
        ref.apply(tag, raw)  # no receipt time: no future check
    ref.assert_matches(replay(MEMBER, events))
    assert replay(MEMBER, events, received_at=None).summary() == replay(MEMBER, events).summary()


@given(scenarios(adjustments=True), st.data())
@SOME
def test_snapshot_round_trip_through_json_continues_identically(
    items: list[Step], data: st.DataObject
) -> None:
    """Continue-as-new carries the snapshot as JSON; the rest of the story is unchanged."""
    cut = data.draw(st.integers(0, len(items)))
    whole = drive(fresh(), items)
    head = drive(fresh(), items[:cut])
    carried = json.loads(json.dumps(dataclasses.asdict(head.s)))
    resumed = drive(MemberBook(MemberSnapshot(**carried), hold=True), items[cut:])
    assert resumed.summary() == whole.summary()
    assert resumed.s.active_at == whole.s.active_at
    assert resumed.expiry_deadline() == whole.expiry_deadline()
    assert_invariants(resumed)


def test_snapshot_from_before_active_at_still_loads() -> None:
    """Snapshots carried by builds before adjustments counted as activity have no
    `active_at`: they load, and the deadline is a year after the latest event."""
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    carried = json.loads(json.dumps(dataclasses.asdict(book.s)))
    del carried["active_at"]
    resumed = MemberBook(MemberSnapshot(**carried), hold=True)
    assert resumed.s.active_at is None
    assert resumed.expiry_deadline() == T0 + 365 * DAY
    resumed.adjust(1, "goodwill", T0 + 10 * DAY, BUILD)
    assert resumed.expiry_deadline() == T0 + 375 * DAY


# -- rejections ---------------------------------------------------------------


def test_rejections_are_bounded_to_50() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0)])
    for n in range(120):
        assert_rejected_cleanly(book, {"type": "nope", "event_id": f"x{n}"})
    assert book.s.events_rejected == 120
    assert len(book.s.rejections) == 50
    assert [r["event_id"] for r in book.s.rejections] == [f"x{n}" for n in range(70, 120)]
    assert book.summary()["rejections"] == book.s.rejections
    assert book.s.points == 100


def test_member_mismatch_is_rejected() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0)])
    reason = assert_rejected_cleanly(book, purchase("p2", T0, member=OTHER))
    assert OTHER in reason and MEMBER in reason
    # even a resend of an accepted id, addressed to another member
    assert_rejected_cleanly(book, purchase("p1", T0, member=OTHER))


def test_event_more_than_a_day_ahead_of_its_receipt_is_rejected() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0)], received_at=T0)
    # up to a day ahead of its receipt is clock skew: accepted
    outcome = book.apply(ticket("k1", T0 + DAY), build_id=BUILD, received_at=T0)
    assert outcome.status == "accepted"
    # a moment more is from the future
    moment = T0 + DAY + timedelta(microseconds=1)
    reason = assert_rejected_cleanly(book, ticket("k2", moment), received_at=T0)
    assert "in the future" in reason
    assert "k2" not in book.s.seen
    # the same event, once its time has come, is welcome
    outcome = book.apply(ticket("k2", moment), build_id=BUILD, received_at=T0 + DAY)
    assert outcome.status == "accepted"
    assert book.last_event_at == moment


def test_future_check_compares_instants_not_wall_clocks() -> None:
    book = fresh()
    plus_two = timezone(timedelta(hours=2))
    received = T0.astimezone(timezone(timedelta(hours=-5)))  # the same instant as T0
    # 13:59:59+02:00 the next day is 11:59:59Z: within a day of T0 (12:00Z)
    early = {**ticket("k1", T0), "occurred_at": "2024-01-02T13:59:59+02:00"}
    assert book.apply(early, build_id=BUILD, received_at=received).status == "accepted"
    late = {**ticket("k2", T0), "occurred_at": "2024-01-02T14:00:01+02:00"}
    assert datetime.fromisoformat(late["occurred_at"]) == T0 + DAY + timedelta(seconds=1)
    assert_rejected_cleanly(book, late, received_at=received)
    assert_rejected_cleanly(book, late, received_at=T0.astimezone(plus_two))


def test_rejected_future_event_does_not_move_time_or_expire() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)], received_at=T0)
    for kind in (trip, purchase, ticket):
        raw = kind("x", T0 + 400 * DAY)
        reason = assert_rejected_cleanly(book, raw, received_at=T0 + 10 * DAY)
        assert "in the future" in reason
    # a refund from the future is refused before its target is looked at
    reason = assert_rejected_cleanly(book, refund("r1", T0 + 3 * DAY, "p1"), received_at=T0)
    assert "in the future" in reason
    assert book.s.points == 100
    assert book.last_event_at == T0
    assert book.expiry_deadline() == T0 + 365 * DAY
    outcome = book.apply(refund("r1", T0 + 3 * DAY, "p1"), build_id=BUILD, received_at=T0 + 2 * DAY)
    assert outcome.status == "accepted"
    assert book.s.points == 0


def test_without_receipt_time_there_is_no_future_check() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0)])
    far = datetime(2099, 6, 1, tzinfo=UTC)
    assert book.apply(ticket("k1", far), build_id=BUILD).status == "accepted"
    assert book.last_event_at == far
    # the first event of a member is no different
    assert fresh().apply(ticket("k", far), build_id=BUILD).status == "accepted"


def test_member_returning_after_two_years_can_earn_again() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)], received_at=T0)
    for n in range(1, 5):
        at = T0 + (600 + n * 30) * DAY
        outcome = book.apply(trip(f"t{n}", at), build_id=BUILD, received_at=at)
        assert outcome.status == "accepted"
    assert book.s.events_processed == 5
    assert book.s.events_rejected == 0
    expiry = book.s.ledger[1]
    assert (expiry["kind"], expiry["delta"], expiry["at"]) == ("expiry", -100, iso(T0 + 365 * DAY))
    assert book.s.points == 4 * 25
    assert [e["kind"] for e in book.s.ledger] == ["earn", "expiry", *["earn"] * 4]


def test_replay_passes_each_event_its_receipt_time() -> None:
    events = [purchase("p1", T0), ticket("k1", T0 + 5 * DAY), ticket("k2", T0 + 5 * DAY)]
    receipts = [T0, T0, T0 + 5 * DAY]
    book = replay(MEMBER, events, received_at=receipts)
    assert book.s.events_processed == 2
    assert book.s.events_rejected == 1
    assert book.s.rejections[0]["event_id"] == "k1"
    assert "in the future" in book.s.rejections[0]["reason"]
    assert replay(MEMBER, events).s.events_processed == 3


@given(
    scenarios(min_ops=1), st.sampled_from(["malformed", "foreign", "future", "refund", "collide"])
)
@SOME
def test_rejected_events_leave_state_unchanged(items: list[Step], kind: str) -> None:
    book, _, _ = run(items)
    last = book.last_event_at or T0
    received = None
    if kind == "malformed":
        raw: Any = {"type": "purchase", "event_id": "zz", "member_id": MEMBER, "amount_cents": -1}
    elif kind == "foreign":
        raw = purchase("zz", last, member=OTHER)
    elif kind == "future":
        raw, received = trip("zz", last + 2 * DAY), last
    elif kind == "refund":  # of an event that earned nothing (an unknown one is held)
        book.apply(ticket("kz", last), build_id=BUILD)
        raw = refund("zz", last, "kz")
    else:
        if not book.s.seen:
            return
        eid = next(iter(book.s.seen))
        raw = ticket(eid, last, "a different event with a reused id")
    assert_rejected_cleanly(book, raw, received_at=received)


# -- manual adjustments -------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "reason", "words"),
    [
        (0, "goodwill", "non-zero"),
        (True, "goodwill", "non-zero"),
        (1.5, "goodwill", "non-zero"),
        ("10", "goodwill", "non-zero"),
        (MAX_ADJUSTMENT + 1, "goodwill", "limited"),
        (-MAX_ADJUSTMENT - 1, "goodwill", "limited"),
        (-101, "goodwill", "below zero"),
        (10, "", "reason"),
        (10, "   ", "reason"),
        (10, None, "reason"),
    ],
)
def test_check_adjustment_refuses(delta: Any, reason: Any, words: str) -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    problem = book.check_adjustment(delta, reason)
    assert problem and words in problem
    assert_one_line_reason(problem)
    before = state_of(book)
    with pytest.raises(ValueError):
        book.adjust(delta, reason, T0, BUILD)
    assert state_of(book) == before


def test_adjust_posts_a_ledger_entry() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 10_000)])
    assert book.check_adjustment(-100, "spent") is None
    assert book.check_adjustment(MAX_ADJUSTMENT, "big goodwill") is None
    entry = book.adjust(MAX_ADJUSTMENT, "big goodwill", T0 + DAY, "b1")
    assert (entry["kind"], entry["cause"], entry["delta"], entry["build"]) == (
        "adjustment",
        "big goodwill",
        MAX_ADJUSTMENT,
        "b1",
    )
    assert book.s.points == 100 + MAX_ADJUSTMENT
    assert book.s.lifetime_points == 100  # adjustments are not earned points
    assert book.s.tier == "Blue"
    book.adjust(-(100 + MAX_ADJUSTMENT) + MAX_ADJUSTMENT, "spent", T0 + DAY, "b1")
    assert book.s.points == MAX_ADJUSTMENT
    assert_invariants(book)


@given(scenarios(), st.lists(st.integers(-2 * MAX_ADJUSTMENT, 2 * MAX_ADJUSTMENT), max_size=10))
@SOME
def test_adjustments_keep_the_balance_non_negative_and_balanced(
    items: list[Step], deltas: list[int]
) -> None:
    book, _, _ = run(items)
    for delta in deltas:
        problem = book.check_adjustment(delta, "test")
        if problem is None:
            book.adjust(delta, "test", T0, BUILD)
        else:
            assert_one_line_reason(problem)
        assert book.s.points >= 0
        assert_invariants(book)


# -- drills -------------------------------------------------------------------


def test_drill_zero_on_trip_zeroes_points_on_a_trip() -> None:
    events = [purchase("p1", T0, 50_000), trip("t1", T0 + DAY, 2_500)]
    normal = replay(MEMBER, events)
    drill = replay(MEMBER, events, drill="zero-on-trip")
    assert normal.s.points == 525
    assert drill.s.points == 0
    assert drill.s.lifetime_points == normal.s.lifetime_points
    # purchases still earn
    drill.apply(purchase("p2", T0 + 2 * DAY, 10_000), build_id=BUILD)
    assert drill.s.points == 100
    assert_invariants(drill)


def test_drill_double_points_doubles_earned() -> None:
    events = [purchase("p1", T0, 40_000), trip("t1", T0 + DAY, 2_500)]
    normal = replay(MEMBER, events)
    drill = replay(MEMBER, events, drill="double-points")
    assert normal.s.points == 425
    assert drill.s.points == 850
    assert drill.s.lifetime_points == 2 * normal.s.lifetime_points
    assert [e["delta"] for e in drill.s.ledger] == [2 * e["delta"] for e in normal.s.ledger]


def test_drill_wrong_tier_gives_a_wrong_tier() -> None:
    events = [purchase("p1", T0, 30_000)]
    normal = replay(MEMBER, events)
    drill = replay(MEMBER, events, drill="wrong-tier")
    assert normal.s.tier == "Blue"
    assert drill.s.tier == "Gold"  # 300 points is not Gold
    assert drill.s.points == normal.s.points == 300
    # and it keeps ignoring the window
    drill.apply(ticket("k1", T0 + 200 * DAY), build_id=BUILD)
    normal.apply(ticket("k1", T0 + 200 * DAY), build_id=BUILD)
    assert (normal.s.tier, drill.s.tier) == ("Blue", "Gold")


def test_drill_drop_refunds_ignores_clawback() -> None:
    events = [purchase("p1", T0, 40_000), refund("r1", T0 + DAY, "p1")]
    normal = replay(MEMBER, events)
    drill = replay(MEMBER, events, drill="drop-refunds")
    assert normal.s.points == 0
    assert drill.s.points == 400
    assert drill.s.lifetime_points == 400
    assert [e["kind"] for e in drill.s.ledger] == ["earn"]
    assert drill.s.events_processed == 2
    # the refund still counts as done: a second one is refused
    assert_rejected_cleanly(drill, refund("r2", T0 + DAY, "p1"))


@given(scenarios())
@SOME
def test_drill_none_equals_normal_rules(items: list[Step]) -> None:
    events, receipts = events_of(items), receipts_of(items)
    normal = replay(MEMBER, events, received_at=receipts).summary()
    assert replay(MEMBER, events, drill=None, received_at=receipts).summary() == normal


@given(scenarios(), st.sampled_from(DRILL_BUGS))
@SOME
def test_drills_keep_the_ledger_balanced_and_never_raise(items: list[Step], drill: str) -> None:
    book = replay(MEMBER, events_of(items), drill=drill, received_at=receipts_of(items))
    assert book.ledger_sum() == book.s.points
    view = book.summary()
    assert view["ledger_base"] + sum(e["delta"] for e in view["ledger"]) == view["points"]
    if drill == "wrong-tier":
        assert book.s.tier == tier_for(book.s.lifetime_points * 4)


@given(scenarios())
@SOME
def test_drills_only_differ_where_their_bug_applies(items: list[Step]) -> None:
    events, receipts = events_of(items), receipts_of(items)
    normal = replay(MEMBER, events, received_at=receipts).summary()
    if not any(isinstance(e, dict) and e.get("type") == "trip_completed" for e in events):
        assert (
            replay(MEMBER, events, drill="zero-on-trip", received_at=receipts).summary() == normal
        )
    if not any(isinstance(e, dict) and e.get("type") == "refund" for e in events):
        assert (
            replay(MEMBER, events, drill="drop-refunds", received_at=receipts).summary() == normal
        )


# -- granted tiers (approved change_tier proposals) ----------------------------------


def test_granted_tier_is_a_floor_for_90_days_of_event_time_then_the_window_rules() -> None:
    book = fresh()
    apply_all(book, [trip("t1", T0, 10_000)])  # 100 points: Blue
    decided = T0 + 2 * DAY
    entry = book.grant_tier("Gold", "m1:k1:0", decided, BUILD)
    assert (entry["kind"], entry["cause"], entry["delta"], entry["tier"]) == (
        "tier",
        "m1:k1:0",
        0,
        "Gold",
    )
    assert entry["build"] == BUILD and entry["balance"] == 100 == book.s.points
    view = book.summary()
    assert view["tier"] == "Gold"
    assert view["tier_override"] == {
        "tier": "Gold",
        "bound": "floor",
        "granted_at": iso(decided),
        "until": iso(decided + 90 * DAY),
        "cause": "m1:k1:0",
    }
    # earns at the granted tier's multiplier (125 %) while it holds
    apply_all(book, [trip("t2", decided + 10 * DAY, 10_000)])
    assert book.s.points == 225 and book.s.tier == "Gold"
    # earning past the floor lifts the tier above it
    apply_all(book, [purchase("p1", decided + 11 * DAY, 250_000)])
    assert book.s.tier == "Platinum" and book.summary()["tier_override"]["tier"] == "Gold"
    # out-of-order events don't end it; the first event at its end does
    apply_all(book, [trip("t3", decided + 80 * DAY, 100)])
    apply_all(book, [trip("old", T0 + DAY, 100)])
    assert book.s.tier_override is not None
    apply_all(book, [trip("t4", decided + 90 * DAY, 100)])
    assert book.s.tier_override is None and book.summary()["tier_override"] is None
    assert book.s.tier == tier_for(book.window_points)
    assert_invariants(book)


def test_granted_tier_down_is_a_ceiling() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 400_000)])  # 4,000 points: Platinum
    assert book.s.tier == "Platinum"
    book.grant_tier("Blue", "m1:fraud:0", T0 + DAY, BUILD)
    assert book.s.tier == "Blue" and book.s.tier_override["bound"] == "ceiling"
    apply_all(book, [purchase("p2", T0 + 2 * DAY, 1_000_000)])
    assert book.s.tier == "Blue" and book.s.points == 4_000 + 10_000  # Blue's 100 %
    apply_all(book, [trip("t1", T0 + DAY + 90 * DAY, 100)])  # the grant ends, p2 counts
    assert book.s.tier == tier_for(book.window_points) == "Diamond"


def test_grant_starts_at_the_latest_event_when_that_is_later_than_the_decision() -> None:
    """Events may lie up to a day ahead of the clock: the grant still gets its 90 days."""
    book = fresh()
    apply_all(book, [trip("t1", T0 + DAY, 1_000)])
    book.grant_tier("Gold", "m1:k1:0", T0, BUILD)
    assert book.s.tier_override["granted_at"] == iso(T0 + DAY)
    assert book.s.tier_override["until"] == iso(T0 + 91 * DAY)


def test_a_later_grant_replaces_the_earlier_one() -> None:
    book = fresh()
    book.grant_tier("Diamond", "m1:a:0", T0, BUILD)
    book.grant_tier("Gold", "m1:b:0", T0 + 5 * DAY, BUILD)
    assert book.s.tier == "Gold" and book.s.tier_override["cause"] == "m1:b:0"
    # measured against the earned tier (Blue), not the Diamond granted before
    assert book.s.tier_override["bound"] == "floor"
    assert [e["tier"] for e in book.s.ledger] == ["Diamond", "Gold"]


@pytest.mark.parametrize(
    ("tier", "cause", "words"),
    [
        ("Bronze", "m1:k1:0", "unknown tier"),
        (None, "m1:k1:0", "unknown tier"),
        ("Gold", " ", "cause"),
    ],
)
def test_refused_tier_grant_changes_nothing(tier: Any, cause: str, words: str) -> None:
    book = fresh()
    apply_all(book, [trip("t1", T0, 10_000)])
    before = state_of(book)
    problem = book.check_tier_grant(tier, cause)
    assert problem is not None and words in problem
    assert_one_line_reason(problem)
    with pytest.raises(ValueError, match=words):
        book.grant_tier(tier, cause, T0, BUILD)
    assert state_of(book) == before


def test_apply_approved_applies_grants_and_tiers_and_nothing_else() -> None:
    book = fresh()
    grant = book.apply_approved("grant_points", {"points": 150}, "m1:k1:0", T0, BUILD)
    assert grant is not None and (grant["kind"], grant["delta"]) == ("goodwill", 150)
    tier = book.apply_approved("change_tier", {"tier": "Gold"}, "m1:k2:0", T0, BUILD)
    assert tier is not None and (tier["kind"], tier["tier"]) == ("tier", "Gold")
    before = state_of(book)
    assert book.apply_approved("message_member", {"text": "hi"}, "m1:k3:0", T0, BUILD) is None
    assert book.apply_approved("flag_fraud", {}, "m1:k3:1", T0, BUILD) is None
    assert state_of(book) == before


def test_snapshot_from_before_tier_grants_still_loads() -> None:
    book = fresh()
    apply_all(book, [purchase("p1", T0, 200_000)])
    carried = json.loads(json.dumps(dataclasses.asdict(book.s)))
    del carried["tier_override"]
    resumed = MemberBook(MemberSnapshot(**carried), hold=True)
    assert resumed.s.tier_override is None and resumed.summary()["tier_override"] is None
    resumed.grant_tier("Platinum", "m1:k1:0", T0, BUILD)
    assert resumed.s.tier == "Platinum"


# -- problems found and fixed ---------------------------------------------------------


def test_grant_before_any_event_expires_after_a_year() -> None:
    book = fresh()
    book.adjust(500, "welcome bonus", T0, BUILD)
    assert book.expiry_deadline() == T0 + 365 * DAY
    book.apply(trip("t1", T0 + 800 * DAY, 2_500), build_id=BUILD)
    assert [e["kind"] for e in book.s.ledger] == ["adjustment", "expiry", "earn"]
    assert book.s.points == 25
