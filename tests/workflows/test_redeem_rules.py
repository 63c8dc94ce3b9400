"""Redemptions in the pure rules (workflows.rules_redeem): the catalogue, redeeming
and cancelling, and their documented interaction with earns, refunds, expiry and
tiers, with hypothesis scenarios interleaving all of them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resources
from tests.workflows.rulekit import (
    BUILD,
    DAY,
    MEMBER,
    T0,
    Step,
    assert_invariants,
    assert_one_line_reason,
    drive,
    fresh,
    purchase,
    refund,
    scenarios,
    state_of,
)
from workflows.contract import EVENT_TYPES_BEFORE_0_4_1
from workflows.isotime import iso
from workflows.rules import MemberBook, parse_catalogue

SOME = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CATALOGUE = parse_catalogue(
    {
        "rewards": [
            {"id": "coffee", "name": "Coffee", "cost": 300, "min_tier": "Blue"},
            {"id": "lounge", "name": "Lounge", "cost": 2_500, "min_tier": "Gold"},
            {"id": "weekend", "name": "Weekend", "cost": 12_000, "min_tier": "Diamond"},
        ]
    }
)


def cancelled(eid: str, at: datetime, request_id: Any, **extra: Any) -> dict[str, Any]:
    """A redemption_cancelled feed event."""
    return {
        "type": "redemption_cancelled",
        "event_id": eid,
        "member_id": MEMBER,
        "occurred_at": iso(at),
        "refers_to": request_id,
        **extra,
    }


def rich(points_cents: int = 200_000, at: datetime = T0) -> MemberBook:
    """A Blue member with 2,000 points from one purchase (2,000 in the window: Gold)."""
    book = fresh()
    book.apply(purchase("p1", at, points_cents), build_id=BUILD)
    return book


# -- catalogue ----------------------------------------------------------------


def test_bundled_catalogue_loads_and_every_reward_is_well_formed() -> None:
    catalogue = parse_catalogue(json.loads(resources.path("rewards.json").read_text("utf-8")))
    assert "coffee" in catalogue
    assert all(r["cost"] > 0 for r in catalogue.values())
    assert resources.rewards() == catalogue


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "object"),
        ({"rewards": [{"id": "a", "name": "A", "cost": 0}]}, "cost"),
        ({"rewards": [{"id": "a", "name": "A", "cost": True}]}, "cost"),
        ({"rewards": [{"id": "a", "name": "A", "cost": 5, "min_tier": "Iron"}]}, "min_tier"),
        ({"rewards": [{"id": "a", "name": "A", "cost": 5}] * 2}, "twice"),
        ({"rewards": [{"id": "", "name": "A", "cost": 5}]}, "id"),
        ({"rewards": [{"id": "a", "name": "A", "cost": 5, "stock": -1}]}, "stock"),
    ],
)
def test_a_bad_catalogue_is_refused_with_the_entry_named(data: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_catalogue(data)


# -- redeem and cancel ----------------------------------------------------------


def test_redeem_posts_minus_the_cost_caused_by_the_request() -> None:
    book = rich()
    before = book.s.points
    record = book.redeem("r1", "coffee", T0 + DAY, CATALOGUE, BUILD)
    assert book.s.points == before - 300
    entry = book.s.ledger[-1]
    assert (entry["kind"], entry["cause"], entry["delta"]) == ("redemption", "r1", -300)
    assert record["status"] == "redeemed" and record["cost"] == 300
    assert_invariants(book)


@pytest.mark.parametrize(
    ("request_id", "reward_id", "fragment"),
    [
        ("r2", "nope", "unknown reward"),
        ("r2", "weekend", "needs tier Diamond"),
        ("", "coffee", "request id"),
        ("r1", "lounge", "already used"),
    ],
)
def test_refused_redemptions_record_nothing(request_id: str, reward_id: str, fragment: str) -> None:
    book = rich()
    book.redeem("r1", "coffee", T0 + DAY, CATALOGUE, BUILD)
    before = state_of(book)
    reason = book.check_redeem(request_id, reward_id, T0 + DAY, CATALOGUE)
    assert reason is not None and fragment in reason
    assert_one_line_reason(reason)
    with pytest.raises(ValueError):
        book.redeem(request_id, reward_id, T0 + DAY, CATALOGUE, BUILD)
    assert state_of(book) == before


def test_a_redemption_that_would_go_below_zero_is_refused() -> None:
    book = rich(50_000)  # 500 points
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    reason = book.check_redeem("r2", "coffee", T0, CATALOGUE)
    assert reason == "Coffee costs 300 points; the balance is 200"
    assert book.s.points == 200


def test_the_same_request_again_returns_the_first_result_and_changes_nothing() -> None:
    book = rich()
    first = book.redeem("r1", "coffee", T0 + DAY, CATALOGUE, BUILD)
    before = state_of(book)
    assert book.redeem("r1", "coffee", T0 + DAY, CATALOGUE, BUILD) == first
    assert state_of(book) == before
    # and a different time under the same id is a different request: refused
    assert book.check_redeem("r1", "coffee", T0 + 2 * DAY, CATALOGUE) is not None


def test_cancelling_returns_the_points_once() -> None:
    book = rich(300_000)  # 3,000 points
    start = book.s.points
    book.redeem("r1", "lounge", T0 + DAY, CATALOGUE, BUILD)
    record = book.cancel_redemption("r1", "customer changed their mind", T0 + 2 * DAY, BUILD)
    assert record["returned"] == 2_500 and record["status"] == "cancelled"
    assert book.s.points == start
    assert book.s.ledger[-1]["kind"] == "redemption_cancelled"
    reason = book.check_cancel("r1", "again")
    assert reason is not None and "already cancelled" in reason
    assert book.check_cancel("r1", " ") == "a reason is required"
    assert book.check_cancel("zz", "why") is not None
    # the request stays used: redeeming it again returns the cancelled record
    assert book.redeem("r1", "lounge", T0 + DAY, CATALOGUE, BUILD)["status"] == "cancelled"
    assert book.s.points == start
    assert_invariants(book)


def test_a_cancellation_after_the_balance_expired_returns_nothing() -> None:
    book = rich()
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    assert book.expire_if_due(T0 + timedelta(days=366), BUILD)
    assert book.s.points == 0
    record = book.cancel_redemption("r1", "late", T0 + timedelta(days=367), BUILD)
    assert record["returned"] == 0 and book.s.points == 0
    assert_invariants(book)


def test_redemption_is_activity_and_leaves_the_tier_alone() -> None:
    book = rich(400_000)  # 4,000 points: Platinum
    assert book.s.tier == "Platinum"
    book.redeem("r1", "lounge", T0 + timedelta(days=100), CATALOGUE, BUILD)
    assert book.s.tier == "Platinum" and book.s.lifetime_points == 4_000
    assert book.expiry_deadline() == T0 + timedelta(days=100 + 365)


def test_a_refund_after_spending_stops_at_zero_and_records_the_shortfall() -> None:
    book = rich(100_000)  # 1,000 points, Gold
    book.redeem("r1", "coffee", T0 + DAY, CATALOGUE, BUILD)
    book.redeem("r2", "coffee", T0 + DAY, CATALOGUE, BUILD)
    book.redeem("r3", "coffee", T0 + DAY, CATALOGUE, BUILD)  # 100 left
    book.apply(refund("x1", T0 + 2 * DAY, "p1"), build_id=BUILD)
    assert book.s.points == 0
    assert book.s.shortfall == 900
    assert book.s.tier == "Blue"
    assert_invariants(book)


def test_drills_break_redemption_as_named() -> None:
    double, free = fresh("double-redeem"), fresh("free-redeem")
    for book in (double, free):
        book.apply(purchase("p1", T0, 100_000), build_id=BUILD)
        book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    assert double.s.points == 400 and free.s.points == 1_000


# -- properties -------------------------------------------------------------------


@st.composite
def with_redemptions(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Rule scenarios (earns, refunds, expiry timers, adjustments, tier grants) with
    redemptions and cancellations inserted anywhere; request ids from a small pool so
    repeats (same and different content) happen often."""
    items: list[Step] = draw(scenarios(min_ops=1, adjustments=True))
    steps: list[tuple[str, Any]] = [("rule", item) for item in items]
    sent: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 15))):
        at = T0 + timedelta(days=draw(st.integers(0, 4 * 365)))
        pick = draw(st.integers(0, 4))
        if pick == 0:
            op: tuple[str, Any] = ("cancel", (f"q{draw(st.integers(0, 5))}", "ops"))
            if draw(st.booleans()):  # by the feed instead of an operator
                op = ("cancel_event", (f"c{len(steps)}", op[1][0], at))
        elif pick == 1 and sent:
            op = draw(st.sampled_from(sent))  # the same request again, same content
        else:
            rid = draw(st.sampled_from([*CATALOGUE, "ghost"]))
            op = ("redeem", (f"q{draw(st.integers(0, 5))}", rid, at))
            sent.append(op)
        steps.insert(draw(st.integers(0, len(steps))), op)
    return steps


@given(with_redemptions())
@SOME
def test_redemptions_interleaved_keep_the_book_balanced_and_never_negative(
    steps: list[tuple[str, Any]],
) -> None:
    book = fresh()
    for kind, payload in steps:
        if kind == "rule":
            drive(book, [payload])
        elif kind == "redeem":
            request_id, reward_id, at = payload
            before = state_of(book)
            first = book.redemption(request_id)
            problem = book.check_redeem(request_id, reward_id, at, CATALOGUE)
            if problem is not None:
                assert_one_line_reason(problem)
                with pytest.raises(ValueError):
                    book.redeem(request_id, reward_id, at, CATALOGUE, BUILD)
                assert state_of(book) == before  # refused: nothing recorded
            elif first is not None:
                # a repeated request changes nothing and answers as the first time
                assert book.redeem(request_id, reward_id, at, CATALOGUE, BUILD) == first
                assert state_of(book) == before
            else:
                record = book.redeem(request_id, reward_id, at, CATALOGUE, BUILD)
                assert book.s.points == before["points"] - record["cost"]
        elif kind == "cancel_event":
            event_id, request_id, at = payload
            before = state_of(book)
            known = book.check_cancel(request_id, "feed") is None
            outcome = book.apply(cancelled(event_id, at, request_id), build_id=BUILD)
            assert outcome.status == ("accepted" if known else "rejected")
            if known:
                record = book.redemption(request_id)
                assert record is not None and record["status"] == "cancelled"
                returned = sum(e["delta"] for e in book.s.ledger if e["kind"] != "expiry")
                assert record["returned"] in (0, record["cost"]), returned
            else:
                assert outcome.reason and book.s.points == before["points"]
        else:
            request_id, reason = payload
            before = state_of(book)
            if book.check_cancel(request_id, reason) is None:
                record = book.cancel_redemption(request_id, reason, T0, BUILD)
                assert book.s.points == before["points"] + record["returned"]
                assert record["returned"] in (0, record["cost"])
            else:
                assert state_of(book) == before
        assert book.s.points >= 0
        assert book.s.shortfall >= 0
        assert_invariants(book)
    # every redemption's points came back at most once
    returned = sum(e["delta"] for e in book.s.ledger if e["kind"] == "redemption_cancelled")
    assert returned <= sum(r["cost"] for r in book.s.redemptions.values() if r["returned"])


@given(with_redemptions())
@settings(SOME, max_examples=30)
def test_redemptions_survive_a_json_round_trip_of_the_snapshot(
    steps: list[tuple[str, Any]],
) -> None:
    import dataclasses

    from workflows.rules import MemberSnapshot

    book = fresh()
    for kind, payload in steps:
        if kind == "rule":
            drive(book, [payload])
        elif kind == "cancel_event":
            book.apply(cancelled(payload[0], payload[2], payload[1]), build_id=BUILD)
        elif kind == "redeem" and book.check_redeem(*payload, CATALOGUE) is None:
            book.redeem(*payload, CATALOGUE, BUILD)
    carried = json.loads(json.dumps(dataclasses.asdict(book.s)))
    resumed = MemberBook(MemberSnapshot(**carried), hold=True)
    for key, record in book.s.redemptions.items():
        again = resumed.redeem(
            record["request_id"],
            record["reward_id"],
            datetime.fromisoformat(record["requested_at"]),
            CATALOGUE,
            BUILD,
        )
        assert again == record, key
    assert resumed.s.points == book.s.points


# -- redemptions as effects (build 0.4.1) ---------------------------------------


def test_a_redemption_is_an_effect_to_hand_over_and_a_cancel_before_drops_it() -> None:
    book = rich()
    book.reward_effects = True
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    book.redeem("r2", "coffee", T0 + DAY, CATALOGUE, BUILD)
    first = book.undelivered_reward()
    assert first is not None and first["request_id"] == "r1"
    book.reward_handed("r1", "effect-x")
    second = book.undelivered_reward()
    assert second is not None and second["request_id"] == "r2"
    # cancelled before it was handed over: dropped, nothing left to deliver
    book.cancel_redemption("r2", "changed mind", T0 + DAY, BUILD)
    assert book.undelivered_reward() is None
    assert book.redemption("r2")["effect"] == "dropped"  # type: ignore[index]
    # cancelled after: the effect stays started (it checks the member itself) and the
    # points come back all the same
    book.cancel_redemption("r1", "not wanted", T0 + DAY, BUILD)
    record = book.redemption("r1")
    assert record is not None
    assert (record["effect"], record["effect_id"], record["returned"]) == (
        "started",
        "effect-x",
        300,
    )
    assert book.s.points == 2_000


def test_without_the_patch_a_redemption_is_no_effect() -> None:
    book = rich()
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    assert book.undelivered_reward() is None
    assert "effect" not in (book.redemption("r1") or {})


# -- cancelled by the feed (build 0.4.1) ------------------------------------------


def test_a_redemption_cancelled_event_returns_the_points_once() -> None:
    book = rich(300_000)  # 3,000 points, Gold
    book.redeem("r1", "lounge", T0 + DAY, CATALOGUE, BUILD)
    assert book.s.points == 500
    event = cancelled("c1", T0 + 2 * DAY, "r1", reason="out of stock at the lounge")
    assert book.apply(event, build_id=BUILD).status == "accepted"
    record = book.redemption("r1")
    assert record is not None
    assert (record["status"], record["returned"], record["cancel_reason"]) == (
        "cancelled",
        2_500,
        "out of stock at the lounge",
    )
    assert book.s.points == 3_000
    assert book.s.ledger[-1]["kind"] == "redemption_cancelled"
    assert book.s.ledger[-1]["cause"] == "r1"
    # the same event again is a duplicate; another event for it is refused, with why
    assert book.apply(event, build_id=BUILD).status == "duplicate"
    again = book.apply(cancelled("c2", T0 + 2 * DAY, "r1"), build_id=BUILD)
    assert again.status == "rejected" and "already cancelled" in (again.reason or "")
    assert book.s.rejections[-1]["reason"] == again.reason
    assert_invariants(book)


def test_a_cancel_event_without_a_reason_says_the_feed_cancelled_it() -> None:
    book = rich()
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    book.apply(cancelled("c1", T0 + DAY, "r1"), build_id=BUILD)
    assert (book.redemption("r1") or {})["cancel_reason"] == "cancelled by the feed"
    assert book.s.points == 2_000


@pytest.mark.parametrize(
    ("refers_to", "extra", "fragment"),
    [
        ("nope", {}, "no redemption"),
        (None, {}, "missing refers_to"),
        (7, {}, "refers_to must be"),
        ("r1", {"reason": 5}, "reason must be a string"),
        ("r1", {"reason": "x" * 501}, "the limit is 500"),
        ("r1", {"reason": "\ud800"}, "not valid Unicode"),
    ],
)
def test_a_bad_cancel_event_is_rejected_with_a_reason_and_changes_nothing(
    refers_to: Any, extra: dict[str, Any], fragment: str
) -> None:
    book = rich()
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    before = state_of(book)
    raw = cancelled("c1", T0 + DAY, refers_to, **extra)
    if refers_to is None:
        del raw["refers_to"]
    outcome = book.apply(raw, build_id=BUILD)
    assert outcome.status == "rejected" and fragment in (outcome.reason or ""), outcome
    assert_one_line_reason(outcome.reason or "")
    assert book.s.points == before["points"]
    assert (book.redemption("r1") or {})["status"] == "redeemed"


def test_a_cancel_event_after_the_balance_expired_is_recorded_and_returns_nothing() -> None:
    book = rich()
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    # the event itself moves event time past the inactivity deadline: expiry first
    outcome = book.apply(cancelled("c1", T0 + timedelta(days=400), "r1"), build_id=BUILD)
    assert outcome.status == "accepted"
    assert book.s.points == 0
    assert (book.redemption("r1") or {})["returned"] == 0
    assert_invariants(book)


def test_a_build_before_0_4_1_rejects_the_event_as_an_unknown_type_as_it_did() -> None:
    book = rich()
    book.cancel_events = False
    book.redeem("r1", "coffee", T0, CATALOGUE, BUILD)
    outcome = book.apply(cancelled("c1", T0 + DAY, "r1"), build_id=BUILD)
    assert outcome.status == "rejected"
    assert outcome.reason == (
        f"unknown event type 'redemption_cancelled'; expected one of {EVENT_TYPES_BEFORE_0_4_1}"
    )
    assert (book.redemption("r1") or {})["status"] == "redeemed"
    assert book.s.points == 1_700
