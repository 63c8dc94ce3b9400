"""What a member carries across continue-as-new stays under its byte budget at the worst
case the contracts allow (the SDK refuses payloads over 2 MiB, which jams the member)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from temporalio.converter import DataConverter

from workflows import carry
from workflows.agent_desk import AgentCarry
from workflows.agent_policy import LIMITS
from workflows.events import MAX_ID_CHARS
from workflows.member import MAX_REQUEST_ID_BYTES, REQUESTS_KEEP, MemberInput
from workflows.proposals import DECIDED_KEEP
from workflows.rules import (
    LEDGER_KEEP,
    REJECTIONS_KEEP,
    SEEN_KEEP,
    MemberBook,
    MemberSnapshot,
    clip_text,
    id_key,
    json_bytes,
    replay,
)
from workflows.rules_redeem import REDEMPTIONS_KEEP, REQUEST_ID_CHARS

WIDE = "\U0001d538"  # 4 bytes of UTF-8, 12 of ASCII-escaped JSON


def payload_bytes(value: Any) -> int:
    """What the SDK would upload: the default converter's payload."""
    return len(DataConverter.default.payload_converter.to_payloads([value])[0].data)


def long_id(n: int) -> str:
    return f"{n:06d}" + WIDE * (MAX_ID_CHARS - 6)


def worst_book() -> MemberBook:
    """A member fed the longest ids the contract allows, for every kept window."""
    book = MemberBook(MemberSnapshot(member_id="m" * 64))
    for n in range(SEEN_KEEP * 5 // 4):
        book.apply(
            {
                "type": "purchase",
                "event_id": long_id(n),
                "member_id": "m" * 64,
                "occurred_at": "2026-03-01T10:00:00Z",
                "amount_cents": 100 + n,
            },
            build_id="b" * 64,
        )
    for n in range(REJECTIONS_KEEP):
        book.apply({"type": "purchase", "event_id": long_id(n)}, build_id="b")  # conflicts
    return book


def worst_agent() -> AgentCarry:
    text = WIDE * 1_000
    proposal = {
        "id": "m" * 64 + ":" + long_id(0) + ":0",
        "member_id": "m" * 64,
        "action": "message_member",
        "arguments": {"text": text},
        "reason": WIDE * 500,
        "trigger": {"kind": "support_ticket", "key": long_id(0), "event_id": long_id(0)},
        "status": "pending",
        "decision_reason": WIDE * 500,
        "decided_by": WIDE * 200,
    }
    pending = [dict(proposal, id=f"p{n}") for n in range(LIMITS["max_pending"])]
    decided = [dict(proposal, id=f"d{n}", status="rejected") for n in range(DECIDED_KEEP)]
    queue = [
        {"kind": "support_ticket", "key": long_id(n), "ticket_text": WIDE * 2_000}
        for n in range(LIMITS["queue_max"])
    ]
    return AgentCarry(proposals=[*pending, *decided], queue=queue)


def test_the_worst_carry_the_contracts_allow_fits_the_budget() -> None:
    book = worst_book()
    requests = [WIDE * (MAX_REQUEST_ID_BYTES // 12) + f"{n}" for n in range(REQUESTS_KEEP)]
    assert all(json_bytes(r) <= MAX_REQUEST_ID_BYTES for r in requests)
    state = MemberInput(book.member_id, book.s, requests, agent=worst_agent())
    before = payload_bytes(state)
    assert before > 2 * 1024 * 1024  # unbounded, it would jam the member
    shrunk = carry.fit(state)
    assert payload_bytes(state) <= carry.CARRY_BUDGET
    assert "trigger texts" in shrunk and "proposal texts" in shrunk
    # nothing a person still has to decide is dropped, and the balance still adds up
    assert sum(p["status"] == "pending" for p in state.agent.proposals) == LIMITS["max_pending"]
    assert book.ledger_sum() == book.s.points


def with_worst_redemptions(book: MemberBook) -> MemberBook:
    """As many redemptions as the member keeps, each with the longest request id, reward
    id, cancel reason, effect id and delivery error the contracts allow; a fifth of them
    still to be handed over (the outbox failing), which must never be forgotten."""
    book.reward_effects = True
    catalogue = {
        "r" * 64: {"id": "r" * 64, "name": "A reward", "cost": 1, "min_tier": "Blue"},
    }
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    for n in range(REDEMPTIONS_KEEP * 5 // 4):
        request = f"{n:06d}" + WIDE * (REQUEST_ID_CHARS - 6)
        book.redeem(request, "r" * 64, at, catalogue, "b" * 64)
        if n % 5:
            book.reward_handed(request, "e" * 64 + ":redemption:" + WIDE * 200)
            book.cancel_redemption(request, WIDE * 500, at, "b" * 64)
        book.s.redemptions[id_key(request)]["effect_error"] = WIDE * 300
    assert len(book.s.redemptions) == REDEMPTIONS_KEEP * 5 // 4
    return book


def test_the_worst_redemptions_fit_and_none_still_to_hand_over_is_forgotten() -> None:
    book = with_worst_redemptions(worst_book())
    requests = [WIDE * (MAX_REQUEST_ID_BYTES // 12) + f"{n}" for n in range(REQUESTS_KEEP)]
    state = MemberInput(book.member_id, book.s, requests, agent=worst_agent())
    pending = {k for k, r in book.s.redemptions.items() if r.get("effect") == "pending"}
    shrunk = carry.fit(state)
    assert payload_bytes(state) <= carry.CARRY_BUDGET
    assert "redemption texts" in shrunk
    assert pending <= set(state.snapshot.redemptions)  # each still gets its reward
    assert len(state.snapshot.redemptions) >= carry.REDEMPTIONS_MIN
    assert book.ledger_sum() == book.s.points


def test_long_ids_cost_a_fixed_size_in_the_dedup_window() -> None:
    book = worst_book()
    keys = list(book.s.seen)
    assert len(keys) >= SEEN_KEEP and max(len(k) for k in keys) == 33
    assert json_bytes(book.s.seen) < 700_000
    # a resend of a long id is still a duplicate; an id that differs in its last
    # character is not
    again = {
        "type": "purchase",
        "event_id": long_id(SEEN_KEEP),
        "member_id": "m" * 64,
        "occurred_at": "2026-03-01T10:00:00Z",
        "amount_cents": 100 + SEEN_KEEP,
    }
    assert book.apply(again, build_id="b").status == "duplicate"
    assert id_key(long_id(1)) != id_key(long_id(1)[:-1] + "x")
    # short plain ids stay readable
    assert id_key("trip-42") == "trip-42" and id_key("#trip").startswith("#")


def test_kept_texts_are_clipped_by_bytes_and_stay_distinct() -> None:
    a, b = WIDE * 200 + "a", WIDE * 200 + "b"
    assert json_bytes(clip_text(a, 256)) <= 256
    assert clip_text(a, 256) != clip_text(b, 256)
    assert clip_text("short", 256) == "short"
    book = worst_book()
    for entry in book.s.ledger:
        assert json_bytes(entry["cause"]) <= 256
    for rejection in book.s.rejections:
        assert json_bytes(rejection) <= 700


def test_an_ordinary_member_carries_everything_unchanged() -> None:
    events = [
        {
            "type": "trip_completed",
            "event_id": f"t{n}",
            "member_id": "alice",
            "occurred_at": datetime(2026, 3, 1, 10, tzinfo=UTC).isoformat(),
            "fare_cents": 2_500,
        }
        for n in range(300)
    ]
    book = replay("alice", events)
    state = MemberInput("alice", book.s, ["r1"], agent=AgentCarry())
    before = json.dumps(json.loads(json.dumps(state, default=lambda o: o.__dict__)))
    assert carry.fit(state) == []
    assert json.dumps(json.loads(json.dumps(state, default=lambda o: o.__dict__))) == before
    assert len(book.s.ledger) <= 2 * LEDGER_KEEP
