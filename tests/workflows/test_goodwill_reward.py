"""The agent's goodwill reward (issue 15): a `redeem_reward` proposal is checked against
the catalogue, the member's tier and the cap of one proposal; what the person approves
(the digest) covers the reward, its name and its cost; once approved it is a redemption
that deducts nothing, given once; the offline model proposes one for a bad ride."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.offline_model import decide
from tests.workflows.rulekit import BUILD, T0, assert_invariants, fresh, purchase
from workflows.agent import member_case
from workflows.agent_policy import AgentPolicy
from workflows.proposals import ProposalBook, arguments_text, check_draft, digest_of, points_of
from workflows.rules import parse_catalogue

REWARDS = parse_catalogue(
    {
        "rewards": [
            {"id": "coffee", "name": "Coffee", "cost": 300, "min_tier": "Blue"},
            {"id": "lounge", "name": "Lounge", "cost": 2_500, "min_tier": "Gold"},
            {"id": "weekend", "name": "Weekend", "cost": 12_000, "min_tier": "Blue"},
        ]
    }
)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def draft(reward_id: Any) -> dict[str, Any]:
    return {"action": "redeem_reward", "arguments": {"reward_id": reward_id}, "reason": "bad ride"}


def test_a_known_reward_is_proposed_with_its_name_and_cost() -> None:
    args, refused = check_draft(draft("coffee"), AgentPolicy(), tier="Blue", rewards=REWARDS)
    assert refused is None
    assert args == {"reward_id": "coffee", "name": "Coffee", "cost": 300}
    assert points_of("redeem_reward", args) == 300
    assert arguments_text("redeem_reward", args) == "Coffee (300 points)"


@pytest.mark.parametrize(
    ("reward_id", "tier", "fragment"),
    [
        ("caviar", "Blue", "unknown reward 'caviar'"),
        (["coffee"], "Blue", "unknown reward"),
        ("lounge", "Blue", "Lounge needs tier Gold (member is Blue)"),
        ("weekend", "Diamond", "12,000 points, above the cap of 5,000 per proposal"),
    ],
)
def test_a_reward_the_guardrails_refuse_says_why(reward_id: Any, tier: str, fragment: str) -> None:
    _, refused = check_draft(draft(reward_id), AgentPolicy(), tier=tier, rewards=REWARDS)
    assert refused is not None and fragment in refused


def test_a_build_before_0_4_1_knows_no_such_action() -> None:
    _, refused = check_draft(draft("coffee"), AgentPolicy(), tier="Blue", rewards=None)
    assert refused == "unknown action 'redeem_reward'"


def test_the_digest_binds_the_reward_its_name_and_its_cost() -> None:
    book = ProposalBook("m1")
    trigger = {"kind": "support_ticket", "key": "k1", "event_id": "e1"}
    (made,) = book.create(
        [draft("coffee")],
        trigger=trigger,
        model="offline",
        tokens=10,
        cost_usd=0.0,
        tier="Blue",
        now=NOW,
        policy=AgentPolicy(),
        rewards=REWARDS,
    )
    assert made["status"] == "pending"
    shown = digest_of(made)
    for changed in ({"cost": 301}, {"name": "Tea"}, {"reward_id": "tea"}):
        assert digest_of({**made, "arguments": {**made["arguments"], **changed}}) != shown
    # a cap lowered after the proposal was made: it can only be rejected
    strict = AgentPolicy(points_cap=200)
    problem = book.check_decision(made["id"], True, now=NOW, policy=strict)
    assert problem is not None and "gives a reward worth 300 points" in problem
    assert book.check_decision(made["id"], False, now=NOW, policy=strict) is None
    # never approved by policy, whatever its size: a person decides
    assert not book.auto_approvable(made, AgentPolicy(auto_approve_max_points=5_000))


def test_an_approved_reward_deducts_nothing_and_is_given_once() -> None:
    book = fresh()
    book.reward_effects = True
    book.apply(purchase("p1", T0, 50_000), build_id=BUILD)  # 500 points
    args = {"reward_id": "coffee", "name": "Coffee", "cost": 300}
    assert book.check_approved("redeem_reward", args, "m1:k1:0") is None
    entry = book.apply_approved("redeem_reward", args, "m1:k1:0", T0, BUILD)
    assert entry is not None and entry["kind"] == "goodwill_reward" and entry["delta"] == 0
    assert book.s.points == 500
    record = book.redemption("m1:k1:0")
    assert record is not None
    assert (record["cost"], record["worth"], record["goodwill"], record["effect"]) == (
        0,
        300,
        True,
        "pending",
    )
    assert book.undelivered_reward() == record  # the reward goes out like any other
    again = book.apply_approved("redeem_reward", args, "m1:k1:0", T0, BUILD)
    assert again == entry and len(book.s.ledger) == 2  # the earn and the one reward
    # cancelled, it returns nothing: nothing was spent
    assert book.cancel_redemption("m1:k1:0", "not wanted", T0, BUILD)["returned"] == 0
    assert book.s.points == 500
    assert_invariants(book)
    bad = book.check_approved("redeem_reward", {"reward_id": "coffee"}, "m1:k2:0")
    assert bad == "a goodwill reward needs the name and cost that were approved"


def test_the_offline_model_gives_the_cheapest_reward_for_a_bad_ride() -> None:
    book = fresh()
    book.apply(purchase("p1", T0, 50_000), build_id=BUILD)
    trigger = {
        "kind": "support_ticket",
        "event_id": "t1",
        "occurred_at": "2026-03-02T10:00:00Z",
        "details": {"ticket_text": "The driver was rude and the car was dirty."},
    }
    case = member_case(book, trigger, [], rewards=REWARDS)
    # a Blue member: the rewards a Blue member may have, cheapest first
    assert [r["reward_id"] for r in case["member"]["rewards"]] == ["coffee", "weekend"]
    calls = decide(case)
    assert [name for name, _ in calls] == ["redeem_reward", "message_member"]
    assert calls[0][1]["reward_id"] == "coffee"
    # the same reward pending already: not proposed again
    pending = [{"action": "redeem_reward", "arguments": {"reward_id": "coffee"}}]
    assert [n for n, _ in decide(member_case(book, trigger, pending, rewards=REWARDS))] == [
        "message_member"
    ]
    # a build before 0.4.1 shows the agent no rewards: an apology only
    assert "rewards" not in member_case(book, trigger, [])["member"]
    assert [n for n, _ in decide(member_case(book, trigger, []))] == ["message_member"]
