"""Effects of approved proposals, delivered: one EffectWorkflow per effect.

An approved message, fraud case or tier-change request becomes an EffectWorkflow
(`effect-<proposal id>-<content digest>`, started once by the member's outbox activity),
which delivers it to every destination configured for its kind: an HTTP webhook or,
for messages, an email. The workflow is the delivery record: its status (pending,
delivered, failed), its attempts and the last answer of each destination are in its
search attributes and memo, so the CLI, the window and any worker list them from
visibility; nothing is kept on a worker's disk.

Each attempt is one activity (no retry of its own); the workflow retries on a durable
timer with backoff, so every attempt and what the destination answered is on the
record. A 4xx other than 408/429 is final for the round: the effect is `failed` until
an operator retries it (`loyalty-desk effects retry`). Retryable failures that used all
attempts of a round are retried again after ROUND_PAUSE. With no destination configured
the effect waits, `pending`, and is delivered once one is (`effects set` wakes it).

Destinations per kind live in one EffectsConfigWorkflow per deployment (memo), like the
guardrails: every worker reads the same, and a machine's files have no say. Secrets
(the webhook signing secret, the SMTP password) stay in each machine's OS keyring and
are read by the delivering activity only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.isotime import iso
    from workflows.signatures import activity_signature

EFFECT_PREFIX = "effect-"
EFFECT_WORKFLOW = "EffectWorkflow"
# reward: a member's redemption (from build 0.4.1), the reward to fulfil; its "proposal
# id" is `<member>:redemption:<request id>` (workflows.rules_redeem)
KINDS = ("message", "fraud_case", "tier_change", "reward")
# superseded: the member's proposal now reads differently (a reset re-ran the agent and
# it proposed something else under the same id): the old content is never delivered
STATUSES = ("pending", "delivered", "failed", "superseded")
DESTINATION_TYPES = ("webhook", "email")
SIGNAL_POKE = "poke"
MEMO_STATE = "effect"

DESTINATIONS_ACTIVITY = "loyalty_effect_destinations"
PROPOSAL_ACTIVITY = "loyalty_effect_proposal"
WEBHOOK_ACTIVITY = "loyalty_effect_webhook"
EMAIL_ACTIVITY = "loyalty_effect_email"

# attempts per destination in one round, and the pauses between them
MAX_ATTEMPTS = 6
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)
MAX_RETRY_AFTER_S = 60.0  # a 429's Retry-After is honoured up to this
ROUND_PAUSE = timedelta(minutes=15)  # a round of retryable failures, before the next
DESTINATION_RECHECK = timedelta(hours=1)  # waiting for a destination: look again this often
ROUNDS_PER_RUN = 50
ATTEMPT_TIMEOUT = timedelta(seconds=30)
ATTEMPT_HEARTBEAT = timedelta(seconds=10)  # a killed worker's attempt is given up this soon
ANSWER_CHARS = 300


def effect_workflow_id(proposal_id: str, digest: str) -> str:
    return f"{EFFECT_PREFIX}{proposal_id}-{digest}"


def idempotency_key(proposal_id: str, digest: str) -> str:
    """What a receiver deduplicates on: the proposal and the content it was approved with."""
    return f"{proposal_id}/{digest}"


@dataclass
class Destination:
    """Where an effect goes: a webhook (url) or an email (to; `{member_id}` is replaced),
    with the SMTP server for email. No secret: those are in the keyring."""

    type: str
    url: str = ""
    to: str = ""
    smtp: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return f"webhook {self.url}" if self.type == "webhook" else f"email {self.to}"


@dataclass
class DestinationsRequest:
    deployment: str
    kind: str


@dataclass
class ProposalRequest:
    member_id: str
    proposal_id: str
    # a reward effect: the redemption's request id (asks for the redemption instead)
    redemption: str = ""


@dataclass
class ProposalNow:
    """The member's record of the proposal as it reads now; found False when the member
    no longer keeps it (old decided proposals are pruned) or does not exist."""

    found: bool
    digest: str = ""
    status: str = ""


@dataclass
class DeliveryRequest:
    effect_id: str
    idempotency_key: str
    destination: Destination
    body: dict[str, Any]
    attempt: int


@dataclass
class DeliveryAnswer:
    """What the destination answered: delivered, or why not and whether to try again."""

    ok: bool
    answer: str
    retryable: bool = True
    retry_after_s: float = 0.0


@dataclass
class EffectState:
    status: str = "pending"
    detail: str = ""
    attempts: int = 0
    # destination key -> {type, target, status, attempts, answer, at}
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    retries: int = 0  # operator retries and configuration changes seen
    delivered_at: str = ""


@dataclass
class EffectInput:
    proposal_id: str
    digest: str
    member_id: str
    kind: str
    payload: dict[str, Any]
    decided_by: str
    decided_at: str
    deployment: str
    state: EffectState | None = None  # carried across continue-as-new


@activity.defn(name=DESTINATIONS_ACTIVITY)
async def effect_destinations(request: DestinationsRequest) -> list[Destination]:
    """Signature only; the worker registers `activities.effects.Deliverer.destinations`."""
    raise NotImplementedError


proposal_now = activity_signature(
    PROPOSAL_ACTIVITY, ProposalRequest, ProposalNow, "activities.effects.Deliverer.proposal"
)
deliver_webhook = activity_signature(
    WEBHOOK_ACTIVITY, DeliveryRequest, DeliveryAnswer, "activities.effects.Deliverer.webhook"
)
deliver_email = activity_signature(
    EMAIL_ACTIVITY, DeliveryRequest, DeliveryAnswer, "activities.effects.Deliverer.email"
)


def effect_body(input: EffectInput) -> dict[str, Any]:
    """The JSON a destination receives: the same bytes on every attempt."""
    payload = input.payload or {}
    return {
        "effect_id": effect_workflow_id(input.proposal_id, input.digest),
        "idempotency_key": idempotency_key(input.proposal_id, input.digest),
        "kind": input.kind,
        "member_id": input.member_id,
        "proposal_id": input.proposal_id,
        "digest": input.digest,
        "action": payload.get("action"),
        "arguments": payload.get("arguments") or {},
        "reason": payload.get("reason") or "",
        "decision_reason": payload.get("decision_reason") or "",
        "decided_by": input.decided_by,
        "decided_at": input.decided_at,
    }


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 3] + "..."


@workflow.defn(name=EFFECT_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class EffectWorkflow:
    @workflow.init
    def __init__(self, input: EffectInput) -> None:
        self._in = input
        self._s = input.state or EffectState()
        self._pokes = 0
        self._rounds = 0

    @workflow.run
    async def run(self, input: EffectInput) -> EffectState:
        self._publish()
        while True:
            if await self._superseded(input):
                return self._s
            destinations = await workflow.execute_activity(
                effect_destinations,
                DestinationsRequest(input.deployment, input.kind),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            self._rounds += 1
            if not destinations:
                self._set(
                    "pending",
                    f"undelivered: no destination is configured for {input.kind} "
                    f"(`loyalty-desk effects set {input.kind} ...`)",
                )
                await self._wait(DESTINATION_RECHECK)
                continue
            final = await self._deliver_round(destinations)
            wanted = {d.key() for d in destinations}
            if all(self._s.deliveries[k]["status"] == "delivered" for k in wanted):
                self._s.delivered_at = iso(workflow.now())
                self._set("delivered", f"delivered to {len(wanted)} destination(s)")
                return self._s
            failing = [
                d
                for k, d in self._s.deliveries.items()
                if k in wanted and d["status"] != "delivered"
            ]
            self._set(
                "failed",
                "; ".join(f"{d['type']} {d['target']}: {d['answer']}" for d in failing)
                + (
                    " (not retried by itself: `loyalty-desk effects retry`)"
                    if final
                    else f" (tried again in {int(ROUND_PAUSE.total_seconds() // 60)} min)"
                ),
            )
            await self._wait(None if final else ROUND_PAUSE)

    async def _superseded(self, input: EffectInput) -> bool:
        """Before each round: is the approved content still what the member holds under
        this proposal id? After a reset the agent may have proposed something else there;
        then this effect's content is never delivered (the new content, once approved,
        is an effect of its own: another digest)."""
        redemption = ""
        if input.kind == "reward":
            redemption = str(((input.payload or {}).get("arguments") or {}).get("request_id", ""))
        now = await workflow.execute_activity(
            proposal_now,
            ProposalRequest(input.member_id, input.proposal_id, redemption),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
        if not now.found or now.digest == input.digest:
            return False
        if redemption:
            self._set(
                "superseded",
                f"not delivered: redemption {redemption} was cancelled before its reward "
                "was delivered (its points went back to the member)",
            )
            return True
        self._set(
            "superseded",
            f"not delivered: the member's proposal {input.proposal_id} now reads "
            f"differently (digest {now.digest}, {now.status}); this content "
            f"({input.digest}) was approved before a reset",
        )
        return True

    async def _deliver_round(self, destinations: list[Destination]) -> bool:
        """One round over the destinations not yet delivered; True when a failure is final
        (a destination refused it), False when only retryable failures are left."""
        final = False
        body = effect_body(self._in)
        for destination in destinations:
            key = destination.key()
            record = self._s.deliveries.setdefault(
                key,
                {
                    "type": destination.type,
                    "target": destination.url or destination.to,
                    "status": "pending",
                    "attempts": 0,
                    "answer": "",
                    "at": "",
                },
            )
            if record["status"] == "delivered":
                continue
            for attempt in range(1, MAX_ATTEMPTS + 1):
                record["status"] = "pending"
                self._set("pending", f"delivering to {destination.type} (attempt {attempt})")
                answer = await self._attempt(destination, body, record["attempts"] + 1)
                record["attempts"] += 1
                self._s.attempts += 1
                record["answer"] = _clip(answer.answer)
                record["at"] = iso(workflow.now())
                if answer.ok:
                    record["status"] = "delivered"
                    break
                record["status"] = "failed"
                if not answer.retryable:
                    final = True
                    break
                if attempt < MAX_ATTEMPTS:
                    pause = BACKOFF[min(attempt - 1, len(BACKOFF) - 1)]
                    if answer.retry_after_s > 0:
                        pause = min(max(pause, answer.retry_after_s), MAX_RETRY_AFTER_S)
                    self._publish()
                    await workflow.sleep(timedelta(seconds=pause))
        return final

    async def _attempt(
        self, destination: Destination, body: dict[str, Any], attempt: int
    ) -> DeliveryAnswer:
        request = DeliveryRequest(
            effect_id=body["effect_id"],
            idempotency_key=body["idempotency_key"],
            destination=destination,
            body=body,
            attempt=attempt,
        )
        deliver = deliver_webhook if destination.type == "webhook" else deliver_email
        try:
            return await workflow.execute_activity(
                deliver,
                request,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                heartbeat_timeout=ATTEMPT_HEARTBEAT,
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as error:
            # the worker died or the attempt ran out of time: nobody knows whether it
            # arrived, so try again (the receiver deduplicates by Idempotency-Key)
            cause = error.cause or error
            return DeliveryAnswer(False, f"no answer: {cause}".splitlines()[0], retryable=True)

    async def _wait(self, timeout: timedelta | None) -> None:
        seen = self._pokes
        try:
            await workflow.wait_condition(lambda: self._pokes != seen, timeout=timeout)
        except TimeoutError:
            pass
        if self._rounds >= ROUNDS_PER_RUN or workflow.info().is_continue_as_new_suggested():
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(
                EffectInput(
                    proposal_id=self._in.proposal_id,
                    digest=self._in.digest,
                    member_id=self._in.member_id,
                    kind=self._in.kind,
                    payload=self._in.payload,
                    decided_by=self._in.decided_by,
                    decided_at=self._in.decided_at,
                    deployment=self._in.deployment,
                    state=self._s,
                )
            )

    @workflow.signal(name=SIGNAL_POKE)
    def poke(self, why: str) -> None:
        """Try again now: an operator's retry, or a destination configured or changed."""
        self._pokes += 1
        self._s.retries += 1

    @workflow.query(name="state")
    def state(self) -> dict[str, Any]:
        return self._view()

    def _view(self) -> dict[str, Any]:
        return {
            "effect_id": effect_workflow_id(self._in.proposal_id, self._in.digest),
            "proposal_id": self._in.proposal_id,
            "member_id": self._in.member_id,
            "kind": self._in.kind,
            "action": (self._in.payload or {}).get("action"),
            "arguments": dict((self._in.payload or {}).get("arguments") or {}),
            "decided_by": self._in.decided_by,
            "decided_at": self._in.decided_at,
            "status": self._s.status,
            "detail": self._s.detail,
            "attempts": self._s.attempts,
            "deliveries": {k: dict(v) for k, v in self._s.deliveries.items()},
            "delivered_at": self._s.delivered_at,
        }

    def _set(self, status: str, detail: str) -> None:
        self._s.status, self._s.detail = status, _clip(detail)
        self._publish()

    def _publish(self) -> None:
        workflow.upsert_search_attributes(
            [
                sa.EFFECT_STATUS.value_set(self._s.status),
                sa.EFFECT_KIND.value_set(self._in.kind),
                sa.EFFECT_MEMBER.value_set(self._in.member_id),
            ]
        )
        workflow.upsert_memo({MEMO_STATE: self._view()})
