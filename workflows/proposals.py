"""Proposals: what the agent wants to do, waiting for a person (or a policy) to decide.

Pure code. A proposal is a plain dict so it reads the same in queries, the CLI and
the continue-as-new input:

    id            "<member_id>:<trigger key>:<index>", deterministic from content, so a
                  reset that re-runs the agent recreates the same ids and a reapplied
                  decision still finds its proposal
    action        grant_points | change_tier | flag_fraud | message_member | redeem_reward
    arguments     {"points": 150} | {"tier": "Gold"} | {} | {"text": "..."}
                  | {"reward_id": "coffee", "name": "Coffee on board", "cost": 300}
    reason        the agent's reason
    trigger       {"kind", "key", "event_id"}
    model         which model proposed it ("offline rules model", ...)
    tokens, cost_usd   this proposal's share of the agent run that made it
    status        pending | approved | rejected | expired
    created_at, expires_at, decided_by, decided_at, decision_reason, policy
    ledger_seq    the ledger entry an approved grant made
    effect        for outbox actions once approved: pending | delivered
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from workflows.agent_policy import ACTIONS, OUTBOX_KINDS, AgentPolicy
from workflows.isotime import iso, parse_iso
from workflows.rules import TIER_NAMES, clip_text, tier_rank

DECIDED_KEEP = 50  # decided proposals carried across runs (pending ones are all kept)
MAX_TEXT = 1_000
MAX_REASON = 500
AUTO_APPROVE_POLICY = "policy:auto-approve-small-grants"
EXPIRY = "system:expiry"


def content_digest(action: object, arguments: object) -> str:
    """What a person approves: a short digest of the proposal's action and arguments.

    A decision carries it, so it binds to the content the person saw, not only to the
    proposal's id (which a re-run of the agent after a reset can reuse for another
    action). Effects use it too: proposal id + digest names one delivery."""
    canonical = json.dumps(
        {"action": action, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def digest_of(record: dict[str, Any]) -> str:
    """The content digest of a proposal record (records carried from builds before 0.3.0
    have no `digest` field: it follows from their content)."""
    return content_digest(record.get("action"), record.get("arguments"))


DETAIL_BYTES = 400


def trigger_detail(trigger: dict[str, Any]) -> str:
    """One line on what triggered the agent run, for the person deciding."""
    details = trigger.get("details") or {}
    kind = trigger.get("kind")
    if kind == "support_ticket":
        text = " ".join(str(details.get("ticket_text") or "").split())
        line = f"ticket: {text}"
    elif kind == "unusual_activity":
        line = (
            f"{details.get('trips_in_window')} trips within "
            f"{details.get('window_minutes')} minutes (limit {details.get('limit')})"
        )
    elif kind == "tier_boundary":
        line = (
            f"{details.get('points_needed')} points from {details.get('next_tier')} "
            f"(now {details.get('tier')})"
        )
    else:
        line = str(kind or "")
    return clip_text(line, DETAIL_BYTES)


def owner_of(proposal_id: str) -> str:
    return proposal_id.split(":", 1)[0]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def points_of(action: object, arguments: Mapping[str, Any]) -> int:
    """What a proposal is worth in points against the caps: a grant's points, a goodwill
    reward's cost; nothing for the other actions."""
    value = arguments.get("points" if action == "grant_points" else "cost")
    if action not in ("grant_points", "redeem_reward") or isinstance(value, bool):
        return 0
    return value if isinstance(value, int) else 0


def arguments_text(action: object, arguments: Mapping[str, Any]) -> str:
    """A proposal's arguments in a few words: "100 points", "to Gold", "Coffee on board
    (300 points)", the message; the same in the window and the CLI."""
    if action == "grant_points":
        points = arguments.get("points")
        return f"{points:,} points" if isinstance(points, int) else str(points)
    if action == "change_tier":
        return f"to {arguments.get('tier')}"
    if action == "message_member":
        return str(arguments.get("text") or "")
    if action == "redeem_reward":
        cost = arguments.get("cost")
        worth = f" ({cost:,} points)" if isinstance(cost, int) else ""
        return f"{arguments.get('name') or arguments.get('reward_id')}{worth}"
    return ""


def _reward_draft(
    args: dict[str, Any],
    policy: AgentPolicy,
    tier: str,
    rewards: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, Any], str | None]:
    """A goodwill reward: from the catalogue the member's build ships, the member's tier
    allowing it, its cost within the cap of one proposal. The arguments carry the
    reward's name and cost as they are now: what the person approves (the digest)."""
    reward_id = args.get("reward_id")
    reward = rewards.get(reward_id) if isinstance(reward_id, str) else None
    if reward is None:
        return {"reward_id": str(reward_id)[:64]}, f"unknown reward {str(reward_id)[:40]!r}"
    normal = {"reward_id": reward["id"], "name": reward["name"], "cost": reward["cost"]}
    if tier_rank(tier) < tier_rank(reward["min_tier"]):
        return normal, f"{reward['name']} needs tier {reward['min_tier']} (member is {tier})"
    if reward["cost"] > policy.points_cap:
        return normal, (
            f"{reward['name']} is worth {reward['cost']:,} points, above the cap of "
            f"{policy.points_cap:,} per proposal"
        )
    return normal, None


def check_draft(
    draft: dict[str, Any],
    policy: AgentPolicy,
    *,
    tier: str,
    rewards: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Normalized arguments and, when a guardrail refuses the draft, why (one line).
    `rewards`: the catalogue, for a member whose build takes goodwill rewards (without
    it, redeem_reward is an unknown action, as it was before build 0.4.1)."""
    action = draft.get("action")
    args = draft.get("arguments") or {}
    if action not in ACTIONS or (action == "redeem_reward" and rewards is None):
        return {}, f"unknown action {str(action)[:40]!r}"
    if not isinstance(args, dict):
        return {}, "arguments must be an object"
    if action == "grant_points":
        points = args.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
            return {"points": points}, "points must be a positive whole number"
        if points > policy.points_cap:
            return {"points": points}, (
                f"{points:,} points is above the cap of {policy.points_cap:,} per proposal"
            )
        return {"points": points}, None
    if action == "change_tier":
        target = args.get("tier")
        if target not in TIER_NAMES:
            return {"tier": str(target)[:40]}, f"unknown tier; expected one of {TIER_NAMES}"
        if target == tier:
            return {"tier": target}, f"the member is already {tier}"
        return {"tier": target}, None
    if action == "message_member":
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            return {"text": ""}, "the message is empty"
        return {"text": _clip(text, MAX_TEXT)}, None
    if action == "redeem_reward":
        assert rewards is not None
        return _reward_draft(args, policy, tier, rewards)
    return {}, None  # flag_fraud: the reason says it all


class ProposalBook:
    """One member's proposals: pending ones and the most recent decided ones."""

    def __init__(self, member_id: str, records: list[dict[str, Any]] | None = None) -> None:
        self.member_id = member_id
        self.records: list[dict[str, Any]] = list(records or [])
        self._by_id = {r["id"]: r for r in self.records}

    # -- creating -------------------------------------------------------------

    def create(
        self,
        drafts: list[dict[str, Any]],
        *,
        trigger: dict[str, Any],
        model: str,
        tokens: int,
        cost_usd: float,
        tier: str,
        now: datetime,
        policy: AgentPolicy,
        rewards: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Turn an agent run's drafts into proposals; guardrails reject bad ones on the spot.

        Ids are `<member>:<trigger key>:<index>`, so a re-run of the same trigger (after
        a reset) makes the same ids; a draft whose id exists already is not made twice.
        """
        made: list[dict[str, Any]] = []
        share = len(drafts) or 1
        pending = len(self.pending())
        for index, draft in enumerate(drafts[: policy.max_proposals_per_run]):
            proposal_id = f"{self.member_id}:{trigger['key']}:{index}"
            if proposal_id in self._by_id:
                continue
            args, refused = check_draft(draft, policy, tier=tier, rewards=rewards)
            if refused is None and pending >= policy.max_pending:
                refused = f"the member already has {pending} pending proposals"
            record: dict[str, Any] = {
                "id": proposal_id,
                "member_id": self.member_id,
                "action": draft.get("action") if draft.get("action") in ACTIONS else "unknown",
                "arguments": args,
                "reason": _clip(str(draft.get("reason") or ""), MAX_REASON),
                "trigger": {
                    **{k: trigger.get(k) for k in ("kind", "key", "event_id")},
                    "detail": trigger_detail(trigger),
                },
                "digest": content_digest(
                    draft.get("action") if draft.get("action") in ACTIONS else "unknown", args
                ),
                "model": model,
                "tokens": tokens // share + (tokens % share if index == 0 else 0),
                "cost_usd": round(cost_usd / share, 6),
                "status": "pending",
                "created_at": iso(now),
                "expires_at": iso(now + timedelta(seconds=policy.proposal_ttl_seconds)),
                "decided_by": None,
                "decided_at": None,
                "decision_reason": None,
                "policy": None,
            }
            if refused:
                record.update(
                    status="rejected",
                    decided_by="guardrail",
                    decided_at=iso(now),
                    decision_reason=f"refused by guardrail: {refused}",
                )
            else:
                pending += 1
            self._add(record)
            made.append(record)
        self._trim()
        return made

    def auto_approvable(self, record: dict[str, Any], policy: AgentPolicy) -> bool:
        return (
            record["status"] == "pending"
            and record["action"] == "grant_points"
            and 0
            < record["arguments"]["points"]
            <= min(policy.auto_approve_max_points, policy.points_cap)
        )

    # -- deciding -------------------------------------------------------------

    def check_decision(
        self, proposal_id: str, approve: bool, *, now: datetime, policy: AgentPolicy
    ) -> str | None:
        """Why this decision cannot be made (one line), or None."""
        owner = owner_of(proposal_id)
        if owner != self.member_id:
            return f"proposal {proposal_id!r} belongs to member {owner!r}, not {self.member_id!r}"
        record = self._by_id.get(proposal_id)
        if record is None:
            return f"unknown proposal {proposal_id!r}"
        if record["status"] == "expired":
            return f"proposal {proposal_id} expired at {record['expires_at']}"
        if record["status"] != "pending":
            return (
                f"proposal {proposal_id} was already {record['status']} "
                f"by {record['decided_by']} at {record['decided_at']}"
            )
        if now >= parse_iso(record["expires_at"]):
            return f"proposal {proposal_id} expired at {record['expires_at']}"
        if approve and record["action"] in ("grant_points", "redeem_reward"):
            points = points_of(record["action"], record["arguments"])
            if points > policy.points_cap:
                what = "grants" if record["action"] == "grant_points" else "gives a reward worth"
                return (
                    f"proposal {proposal_id} {what} {points:,} points, above the cap of "
                    f"{policy.points_cap:,} per proposal; it can only be rejected"
                )
        return None

    def decide(
        self,
        proposal_id: str,
        approve: bool,
        *,
        actor: str,
        reason: str,
        now: datetime,
        policy_text: str | None = None,
    ) -> dict[str, Any]:
        """Record a decision; check_decision first. Outbox actions get an effect to deliver."""
        record = self._by_id[proposal_id]
        record.update(
            status="approved" if approve else "rejected",
            decided_by=actor,
            decided_at=iso(now),
            decision_reason=_clip(reason, MAX_REASON),
            policy=policy_text,
        )
        if approve and record["action"] in OUTBOX_KINDS:
            record["effect"] = "pending"
        self._trim()
        return record

    def expire_due(self, now: datetime) -> list[dict[str, Any]]:
        expired = []
        for record in self.pending():
            if parse_iso(record["expires_at"]) <= now:
                record.update(
                    status="expired",
                    decided_by=EXPIRY,
                    decided_at=record["expires_at"],
                    decision_reason="not decided before it expired",
                )
                expired.append(record)
        if expired:
            self._trim()
        return expired

    # -- views ----------------------------------------------------------------

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        return self._by_id.get(proposal_id)

    def pending(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "pending"]

    def pending_count(self) -> int:
        return sum(1 for r in self.records if r["status"] == "pending")

    def undelivered(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("effect") == "pending"]

    def next_expiry(self) -> datetime | None:
        times = [r["expires_at"] for r in self.records if r["status"] == "pending"]
        return parse_iso(min(times)) if times else None

    def has_trigger(self, key: str) -> bool:
        return any(r["trigger"]["key"] == key for r in self.records)

    # -- internals --------------------------------------------------------------

    def _add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._by_id[record["id"]] = record

    def _trim(self) -> None:
        """Keep every pending or undelivered proposal and the most recent decided ones."""
        decided = [
            r for r in self.records if r["status"] != "pending" and r.get("effect") != "pending"
        ]
        if len(decided) <= DECIDED_KEEP:
            return
        drop = {r["id"] for r in decided[: len(decided) - DECIDED_KEEP]}
        self.records = [r for r in self.records if r["id"] not in drop]
        self._by_id = {r["id"]: r for r in self.records}
