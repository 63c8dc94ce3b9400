"""The member workflow's messages and limits: its input, the adjustment and decision
requests and their results, the patch names of its builds, and the bounds it holds
requests to. Light (no Agents SDK, no worker): the history readers and the clients
import it; `workflows.member` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.common import RetryPolicy

from workflows.agent_desk import AgentCarry
from workflows.rules import MemberSnapshot, json_bytes

# Continue-as-new after this many received signals (duplicates included) or events
# (bulk signals carry many), so history and replay cost stay bounded per run.
MAX_SIGNALS_PER_RUN = 500
MAX_EVENTS_PER_RUN = 5_000
REQUESTS_KEEP = 256
# search attributes (what the members table shows) lag the state by at most this much
PUBLISH_INTERVAL = timedelta(seconds=1)
AGENT_RUN_TIMEOUT = timedelta(minutes=15)
AGENT_RESULT_GRACE = timedelta(minutes=1)
OUTBOX_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
)
OUTBOX_PAUSE = timedelta(minutes=10)  # after a delivery failed every retry, before trying again
# builds before it recorded an approved tier change in the outbox only; with it the
# member's tier moves too (histories of those builds replay without it)
TIER_GRANT_PATCH = "tier-grant"
# 0.2.0: events received by signal wait in an inbox and each workflow task applies at
# most MAX_EVENTS_PER_TASK of them (a flood of signals arrives in one task, and
# applying it all at once runs past the SDK's 2 s deadlock detector on every retry);
# grants are checked against the rules before they are applied. Runs started by
# earlier builds keep their behaviour (recovery.history reads both).
BOUNDED_PATCH = "bounded-tasks"
MAX_EVENTS_PER_TASK = 1_000
# 0.3.0: a refund that arrives before the event it refers to is held until it arrives
# (workflows.rules: the hold) instead of rejected; decisions carry the digest of the
# content the person saw and bind to it (see Decision). Runs of earlier builds keep
# their behaviour; recovery.history reads both.
HOLD_PATCH = "hold-and-bind"
# 0.3.1: an events signal that the worker's converter cannot read as a whole (its JSON
# parser refuses what Python's accepts, e.g. a string with a lone surrogate escape) is
# read with plain JSON, as clients and history readers read it, and each event the
# worker's converter cannot carry is rejected alone: the good events beside it apply
# (they were one rejection with the rest). Runs of earlier builds keep their behaviour.
PER_EVENT_PATCH = "per-event-reading"
# 0.4.0: the member takes redemptions (update `redeem`, `cancel_redemption`; see
# workflows.rules_redeem). Runs of earlier builds refuse them (they had no such update)
# and their histories hold none, so nothing they computed changes.
REDEEM_PATCH = "redemptions"
# 0.4.1: a redemption is an effect (the reward to fulfil): the member hands each one to
# the outbox (an EffectWorkflow of kind `reward`, delivered like approved proposals), and
# a cancellation before it was handed over drops it; the feed may cancel one with a
# `redemption_cancelled` event. Runs of earlier builds hand over nothing (their
# histories hold no such activity) and reject that event type as unknown, as they did;
# the points they computed are the same.
REWARD_EFFECTS_PATCH = "redemption-effects"
QUERY_REDEMPTION = "redemption"  # one redemption by request id (the effect's check)
DRAIN_PAUSE = timedelta(milliseconds=1)  # a timer ends the task; the next one goes on
DRAIN_SUMMARY = "drain"  # the drain timer's summary: how a history reader tells it apart
MAX_ACTOR = 200
MAX_REQUEST_ID_BYTES = 200  # request ids are kept (REQUESTS_KEEP of them) across runs
MAX_REASON_CHARS = 500
MAX_PROPOSAL_ID_CHARS = 400
MAX_POLICY_CHARS = 500
MAX_DIGEST_CHARS = 64
EARLIER_KEEP = 3  # earlier decisions kept in a proposal's record


@dataclass
class MemberInput:
    member_id: str
    snapshot: MemberSnapshot | None = None
    # idempotency keys of recent adjustments, carried across runs
    requests: list[str] | None = None
    # continue-as-new thresholds; set at the first start and carried across runs
    max_signals: int = MAX_SIGNALS_PER_RUN
    max_events: int = MAX_EVENTS_PER_RUN
    # proposals, queued triggers, budgets, breaker and costs of the member's agent
    agent: AgentCarry | None = None


@dataclass
class Adjustment:
    points: int
    reason: str
    actor: str
    request_id: str


@dataclass
class AdjustmentResult:
    applied: bool
    points: int
    ledger_seq: int
    message: str


@dataclass
class Decision:
    """Approve or reject one proposal; `actor` is who decides, `reason` is required."""

    proposal_id: str
    approve: bool
    reason: str
    actor: str
    # the bulk policy that selected the proposal, when one did
    policy: str | None = None
    # from build 0.3.0: the digest of the action and arguments the person saw
    # (workflows.proposals.content_digest); the member refuses a decision without it,
    # or for another content, or for a proposal it does not have
    digest: str | None = None
    # a decision re-sent by a rollback: when it was first made (ISO 8601); it applies
    # at that time, and if the proposal's content changed since, the proposal stays
    # pending and keeps the earlier decision in its record
    decided_at: str | None = None


@dataclass
class DecisionResult:
    proposal_id: str
    status: str
    applied: bool
    message: str
    ledger_seq: int | None = None
    # what an approval applied, so a replay of the history (the rollback preview) can
    # apply it the same way: MemberBook.apply_approved(action, arguments, id, decided_at)
    action: str | None = None
    arguments: dict[str, Any] | None = None
    decided_at: str | None = None


@dataclass
class RedeemRequest:
    """Spend points on a reward; `at` (ISO 8601 with a time zone) is part of the
    request's content: the same request_id with the same reward and time is a retry."""

    request_id: str
    reward_id: str
    at: str
    actor: str


@dataclass
class CancelRedemption:
    request_id: str
    reason: str
    actor: str


@dataclass
class RedemptionResult:
    """The redemption as the member records it (workflows.rules_redeem), its balance
    after, and whether this call applied it (False: a retry answered as the first)."""

    applied: bool
    points: int
    redemption: dict[str, Any]
    message: str


def redeem_problem(request: RedeemRequest) -> str | None:
    """Bounds on a redemption request, whoever sends it."""
    if not isinstance(request.request_id, str) or not request.request_id.strip():
        return "a request_id is required"
    if json_bytes(request.request_id) > MAX_REQUEST_ID_BYTES:
        return f"the request_id is longer than {MAX_REQUEST_ID_BYTES} bytes"
    if not isinstance(request.actor, str) or not request.actor.strip():
        return "the actor (who redeems) is required"
    if len(request.actor) > MAX_ACTOR:
        return f"the actor must be text of at most {MAX_ACTOR} characters"
    if time_of(request.at) is None:
        return "at must be an ISO 8601 time with a time zone"
    return None


def cancel_problem(request: CancelRedemption) -> str | None:
    if not isinstance(request.actor, str) or not request.actor.strip():
        return "the actor (who cancels) is required"
    if len(request.actor) > MAX_ACTOR:
        return f"the actor must be text of at most {MAX_ACTOR} characters"
    if not isinstance(request.reason, str) or len(request.reason) > MAX_REASON_CHARS:
        return f"the reason must be text of at most {MAX_REASON_CHARS} characters"
    return None


def time_of(text: Any) -> datetime | None:
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def request_problem(request: Adjustment) -> str | None:
    """Bounds on an adjustment request, whoever sends it (its id and reason are kept)."""
    if not isinstance(request.request_id, str) or not request.request_id.strip():
        return "a request_id is required"
    if json_bytes(request.request_id) > MAX_REQUEST_ID_BYTES:
        return f"the request_id is longer than {MAX_REQUEST_ID_BYTES} bytes"
    if not isinstance(request.reason, str) or len(request.reason) > MAX_REASON_CHARS:
        return f"the reason must be text of at most {MAX_REASON_CHARS} characters"
    if not isinstance(request.actor, str) or len(request.actor) > MAX_ACTOR:
        return f"the actor must be text of at most {MAX_ACTOR} characters"
    return None


def decision_problem(decision: Decision) -> str | None:
    """Bounds on a decision request, whoever sends it."""
    if (
        not isinstance(decision.proposal_id, str)
        or len(decision.proposal_id) > MAX_PROPOSAL_ID_CHARS
    ):
        return f"the proposal_id must be text of at most {MAX_PROPOSAL_ID_CHARS} characters"
    if not isinstance(decision.approve, bool):
        return "approve must be true or false"
    if not isinstance(decision.reason, str) or len(decision.reason) > MAX_REASON_CHARS:
        return f"the reason must be text of at most {MAX_REASON_CHARS} characters"
    if decision.policy is not None and (
        not isinstance(decision.policy, str) or len(decision.policy) > MAX_POLICY_CHARS
    ):
        return f"the policy must be text of at most {MAX_POLICY_CHARS} characters"
    if decision.digest is not None and (
        not isinstance(decision.digest, str) or len(decision.digest) > MAX_DIGEST_CHARS
    ):
        return f"the digest must be text of at most {MAX_DIGEST_CHARS} characters"
    if decision.decided_at is not None and decided_at_of(decision) is None:
        return "decided_at must be an ISO 8601 time with a time zone"
    return None


def decided_at_of(decision: Decision) -> datetime | None:
    text = decision.decided_at
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


TURN_STATUSES = ("ok", "max_turns", "budget", "model_error", "error")
MAX_COUNT = 10**9


def trigger_key_of(proposal_id: str) -> str:
    """`<member>:<trigger key>:<index>` -> trigger key (which may itself contain colons)."""
    rest = proposal_id.split(":", 1)[1] if ":" in proposal_id else ""
    return rest.rsplit(":", 1)[0]
