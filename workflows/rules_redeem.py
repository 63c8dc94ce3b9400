"""Redemptions: a member spends points on a reward from the catalogue, and an
operator may cancel one. A mixin of `workflows.rules.MemberBook`; pure code.

Rules (the documented interaction with the rest of the book):
- a redemption is a ledger entry of kind "redemption", its cause the request id, of
  minus the reward's cost; it is refused (with a one-line reason, nothing recorded)
  for an unknown reward, a tier below the reward's minimum, a balance that would go
  below zero, or a request id already used with different content (reward or time);
- the same request id with the same content changes nothing and returns the first
  result, for as long as the member remembers it (REDEMPTIONS_KEEP, carried across
  continue-as-new);
- a redemption counts as activity (it moves the inactivity deadline, like an
  adjustment); it changes neither the tier window nor lifetime points (they count
  earned points), so it never moves the tier;
- cancelling returns the cost once, as a "redemption_cancelled" entry (cause the
  request id); a second cancellation is refused. An operator cancels with the
  `cancel_redemption` update; from build 0.4.1 (`cancel_events`, the same patch as
  below) the feed may send a `redemption_cancelled` event ({refers_to: request id,
  reason?}), applied at its `occurred_at` like any event: one for an unknown or
  already cancelled redemption is rejected with the reason (earlier builds reject the
  type as unknown), a resend of the same event is a duplicate as usual. When the balance expired after
  the redemption, the points would have expired too: the cancellation is recorded
  and returns nothing;
- from build 0.4.1 (`reward_effects`, patch `redemption-effects`) a redemption is also
  an effect, the reward to fulfil: its record's `effect` is "pending" until the member
  hands it to the outbox ("started", with the `effect_id`), delivered at least once
  under the idempotency key `<member>:redemption:<request id>/<digest>`. Cancelling
  before it was handed over drops it ("dropped"); once started, the effect checks the
  member before each round and is not delivered if the redemption was cancelled
  ("superseded"); cancelling after delivery leaves the delivered effect as it is (the
  reward went out) and still returns the points: fulfilment is the receiver's business;
- a goodwill reward (an approved `redeem_reward` proposal, build 0.4.1) is a
  redemption that deducts nothing: a ledger entry of kind "goodwill_reward" and zero
  points (its cause the proposal id), a record keyed by the proposal id with `cost` 0
  and `worth` the reward's points, its reward handed to the outbox like any other;
  it is no member activity; cancelling it returns nothing (nothing was spent);
- a later refund claws back what its event earned but never takes the balance
  below zero: the points already spent are not clawed back, and what could not be
  taken back is recorded in `shortfall` (see MemberBook._refund).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflows.book import CAUSE_BYTES, TIER_NAMES, MemberSnapshot, clip_text, id_key, tier_rank
from workflows.contract import EVENT_TYPES, EVENT_TYPES_BEFORE_0_4_1
from workflows.events import Event, EventError
from workflows.isotime import iso

REDEMPTIONS_KEEP = 500  # request ids a member remembers (idempotency window)
REWARD_ID_CHARS = 64
REQUEST_ID_CHARS = 200
FEED_CANCEL_REASON = "cancelled by the feed"  # a redemption_cancelled without a reason


def parse_catalogue(data: Any) -> dict[str, dict[str, Any]]:
    """A reward catalogue (resources/rewards.json) as reward id -> entry, checked.

    Each entry: id, name, cost (points, > 0), min_tier (a tier name), and an
    optional stock (a whole number >= 0, shown to operators; members do not share
    state, so the catalogue does not enforce it). ValueError names the bad entry."""
    if not isinstance(data, dict) or not isinstance(data.get("rewards"), list):
        raise ValueError("a reward catalogue is an object with a list of rewards")
    out: dict[str, dict[str, Any]] = {}
    for n, entry in enumerate(data["rewards"]):
        where = f"reward #{n + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not an object")
        rid, name, cost = entry.get("id"), entry.get("name"), entry.get("cost")
        if not isinstance(rid, str) or not rid or len(rid) > REWARD_ID_CHARS:
            raise ValueError(f"{where} needs an id of 1..{REWARD_ID_CHARS} characters")
        where = f"reward {rid!r}"
        if rid in out:
            raise ValueError(f"{where} appears twice")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where} needs a name")
        if isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0:
            raise ValueError(f"{where} needs a cost of whole points above zero")
        tier = entry.get("min_tier", TIER_NAMES[0])
        if tier not in TIER_NAMES:
            raise ValueError(f"{where} has unknown min_tier {str(tier)[:40]!r}")
        stock = entry.get("stock")
        if stock is not None and (
            isinstance(stock, bool) or not isinstance(stock, int) or stock < 0
        ):
            raise ValueError(f"{where} has a stock that is not a whole number >= 0")
        out[rid] = {"id": rid, "name": name, "cost": cost, "min_tier": tier, "stock": stock}
    return out


def reward_effect_source(member_id: str, request_id: str) -> str:
    """What a redemption's effect stands for, in place of a proposal id."""
    return f"{member_id}:redemption:{request_id}"


REWARD_EFFECT_ACTION = "reward"


def reward_effect_arguments(record: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a redemption's effect (their digest is in its idempotency key):
    what was asked for and when, and what it was worth."""
    return {
        "request_id": record["request_id"],
        "reward_id": record["reward_id"],
        "name": record["name"],
        "cost": record["cost"],
        "requested_at": record["requested_at"],
    }


class Redemptions:
    """Redeem and cancel (see the module)."""

    s: MemberSnapshot
    drill: str | None
    reward_effects = False  # redemptions are effects too (build 0.4.1)
    cancel_events = True  # takes redemption_cancelled events (build 0.4.1; the rules do)

    if TYPE_CHECKING:

        def _post(
            self, kind: str, cause: str, delta: int, at: datetime, build_id: str
        ) -> dict[str, Any]: ...

        def _advance(self, moment: datetime, build_id: str) -> None: ...

    @property
    def event_types(self) -> tuple[str, ...]:
        """The event types this member takes (see `cancel_events`)."""
        return EVENT_TYPES if self.cancel_events else EVENT_TYPES_BEFORE_0_4_1

    def redemption(self, request_id: str) -> dict[str, Any] | None:
        """What the member remembers of a request (a copy), or None."""
        if not isinstance(request_id, str):
            return None
        found = self.s.redemptions.get(id_key(request_id))
        return dict(found) if found is not None else None

    def check_redeem(
        self,
        request_id: Any,
        reward_id: Any,
        at: datetime,
        catalogue: Mapping[str, Mapping[str, Any]],
    ) -> str | None:
        """Why `redeem` would refuse this request now (None: it applies, or it
        repeats an earlier request with the same content and changes nothing)."""
        if not isinstance(request_id, str) or not request_id.strip():
            return "a request id is required"
        if len(request_id) > REQUEST_ID_CHARS:
            return f"a request id is at most {REQUEST_ID_CHARS} characters"
        if not isinstance(reward_id, str) or not reward_id:
            return "a reward id is required"
        earlier = self.s.redemptions.get(id_key(request_id))
        if earlier is not None:
            if earlier["reward_id"] == reward_id and earlier["requested_at"] == iso(at):
                return None
            return (
                f"request {clip_text(request_id, 60)} was already used for a different redemption"
            )
        reward = catalogue.get(reward_id)
        if reward is None:
            return f"unknown reward {clip_text(reward_id, 60)}"
        if tier_rank(self.s.tier) < tier_rank(reward["min_tier"]):
            return f"{reward['name']} needs tier {reward['min_tier']} or above (member is {self.s.tier})"
        if self.s.points - reward["cost"] < 0:
            return f"{reward['name']} costs {reward['cost']:,} points; the balance is {self.s.points:,}"
        return None

    def redeem(
        self,
        request_id: str,
        reward_id: str,
        at: datetime,
        catalogue: Mapping[str, Mapping[str, Any]],
        build_id: str,
    ) -> dict[str, Any]:
        """Redeem (validate first with check_redeem): returns the redemption record,
        the first one's when the same request comes again."""
        problem = self.check_redeem(request_id, reward_id, at, catalogue)
        if problem:
            raise ValueError(problem)
        key = id_key(request_id)
        earlier = self.s.redemptions.get(key)
        if earlier is not None:
            return dict(earlier)
        reward = catalogue[reward_id]
        cost = int(reward["cost"])
        if self.drill != "free-redeem":
            entry = self._post("redemption", request_id, -cost, at, build_id)
            if self.drill == "double-redeem":
                self._post("redemption", request_id, -cost, at, build_id)
        else:
            entry = {"seq": self.s.ledger_seq}
        self.s.active_at = iso(at)
        record = self._keep(key, request_id, reward_id, reward["name"], cost, at, entry["seq"])
        if len(self.s.redemptions) > REDEMPTIONS_KEEP * 5 // 4:
            excess = len(self.s.redemptions) - REDEMPTIONS_KEEP
            for old in list(self.s.redemptions)[:excess]:
                if self.s.redemptions[old].get("effect") != "pending":  # still to hand over
                    del self.s.redemptions[old]
        return dict(record)

    def check_reward(self, arguments: Mapping[str, Any], cause: str) -> str | None:
        """Why `give_reward` would refuse (None: it applies, or it was given already)."""
        reward_id, name, worth = (arguments.get(k) for k in ("reward_id", "name", "cost"))
        if not isinstance(reward_id, str) or not reward_id or len(reward_id) > REWARD_ID_CHARS:
            return "a goodwill reward needs its reward id"
        if not isinstance(name, str) or isinstance(worth, bool) or not isinstance(worth, int):
            return "a goodwill reward needs the name and cost that were approved"
        if not isinstance(cause, str) or not cause.strip():
            return "a cause (the proposal id) is required"
        return None

    def give_reward(
        self, arguments: Mapping[str, Any], cause: str, at: datetime, build_id: str
    ) -> dict[str, Any]:
        """An approved goodwill reward (validate first with check_reward): the ledger
        entry it posts (zero points), the same one when given again."""
        problem = self.check_reward(arguments, cause)
        if problem:
            raise ValueError(problem)
        key = id_key(cause)
        earlier = self.s.redemptions.get(key)
        if earlier is not None:
            return next(
                (e for e in self.s.ledger if e["seq"] == earlier["seq"]), {"seq": earlier["seq"]}
            )
        entry = self._post("goodwill_reward", cause, 0, at, build_id)
        name = clip_text(arguments["name"], CAUSE_BYTES)
        self._keep(key, cause, arguments["reward_id"], name, 0, at, entry["seq"])
        self.s.redemptions[key].update(worth=arguments["cost"], goodwill=True)
        return entry

    def _keep(
        self,
        key: str,
        request_id: str,
        reward_id: str,
        name: str,
        cost: int,
        at: datetime,
        seq: int,
    ) -> dict[str, Any]:
        """A new redemption record, remembered under `key` (its effect still to hand over,
        from build 0.4.1)."""
        record: dict[str, Any] = {
            "request_id": clip_text(request_id, CAUSE_BYTES),
            "reward_id": reward_id,
            "name": name,
            "cost": cost,
            "requested_at": iso(at),
            "seq": seq,
            "status": "redeemed",
            "returned": 0,
            "cancel_reason": None,
        }
        if self.reward_effects:
            record["effect"] = "pending"
        self.s.redemptions[key] = record
        return record

    def undelivered_reward(self) -> dict[str, Any] | None:
        """The oldest redemption whose effect is still to be handed to the outbox."""
        if not self.reward_effects:
            return None
        for record in self.s.redemptions.values():
            if record.get("effect") == "pending":
                return record
        return None

    def reward_handed(self, request_id: str, effect_id: str) -> None:
        """The redemption's effect exists (started once; a cancellation since is the
        effect's to notice)."""
        record = self.s.redemptions.get(id_key(request_id))
        if record is not None and record.get("effect") in ("pending", "dropped"):
            record["effect"] = "started"
            record["effect_id"] = effect_id

    def redemptions_view(self, keep: int = 50) -> dict[str, Any]:
        """The redemptions (the latest `keep`, oldest first) and the refund shortfall,
        for the member's `state` view from build 0.4.0."""
        return {
            "redemptions": [dict(r) for r in list(self.s.redemptions.values())[-keep:]],
            "shortfall": self.s.shortfall,
        }

    def check_cancel(self, request_id: Any, reason: Any) -> str | None:
        """Why `cancel_redemption` would refuse now (None: it applies)."""
        if not isinstance(reason, str) or not reason.strip():
            return "a reason is required"
        if not isinstance(request_id, str) or not request_id:
            return "a request id is required"
        record = self.s.redemptions.get(id_key(request_id))
        if record is None:
            return f"no redemption {clip_text(request_id, 60)} to cancel"
        if record["status"] != "redeemed":
            return f"redemption {clip_text(request_id, 60)} was already cancelled"
        return None

    def _cancel_by_event(self, event: Event, build_id: str) -> None:
        """A redemption_cancelled event: checked before event time moves on."""
        reason = event.text if event.text and event.text.strip() else FEED_CANCEL_REASON
        problem = self.check_cancel(event.refers_to, reason)
        if problem:
            raise EventError(problem, event.event_id)
        assert event.refers_to is not None
        self._advance(event.occurred_at, build_id)
        self.cancel_redemption(event.refers_to, reason, event.occurred_at, build_id)

    def cancel_redemption(
        self, request_id: str, reason: str, at: datetime, build_id: str
    ) -> dict[str, Any]:
        """Cancel a redemption (validate first with check_cancel): the cost comes back
        once, unless the balance expired after it (then nothing comes back)."""
        problem = self.check_cancel(request_id, reason)
        if problem:
            raise ValueError(problem)
        record = self.s.redemptions[id_key(request_id)]
        expired = self.s.expired_seq > record["seq"]
        returned = 0 if expired else record["cost"]
        if returned:
            self._post("redemption_cancelled", request_id, returned, at, build_id)
            self.s.active_at = iso(at)
        record["status"] = "cancelled"
        if record.get("effect") == "pending":
            record["effect"] = "dropped"  # never handed over: nothing to fulfil
        record["returned"] = returned
        record["cancel_reason"] = clip_text(reason, CAUSE_BYTES)
        return dict(record)
