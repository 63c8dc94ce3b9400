"""The member workflow's background jobs: inactivity expiry, expiry of proposals,
delivery of approved effects (the outbox), and publishing its search attributes.

A mixin of `workflows.member.MemberWorkflow` (the state it reads is the workflow's)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeUpdate,
)
from temporalio.exceptions import (
    ActivityError,
)

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes
    from workflows.agent_desk import AgentDesk
    from workflows.agent_io import OutboxEntry, OutboxReceipt, outbox_deliver
    from workflows.agent_policy import OUTBOX_KINDS
    from workflows.member_messages import (
        OUTBOX_PAUSE,
        OUTBOX_RETRY,
        PUBLISH_INTERVAL,
    )
    from workflows.rules import MemberBook
    from workflows.rules_redeem import (
        REWARD_EFFECT_ACTION,
        reward_effect_arguments,
        reward_effect_source,
    )


class MemberChores:
    """The member's timers, outbox and publishing (see the module)."""

    _book: MemberBook
    _desk: AgentDesk
    _dirty: bool
    _closing: bool
    _published: dict[str, Any]
    _published_at: datetime | None

    if TYPE_CHECKING:

        def _build(self) -> str: ...

        def _should_continue(self) -> bool: ...

    async def _expire_when_inactive(self) -> None:
        """Durable inactivity timer.

        Only armed while the deadline lies ahead of workflow time: a member fed
        historical events expires by event time alone, so the same events always
        give the same state.
        """
        while True:
            deadline = self._book.expiry_deadline()
            if deadline is None or deadline <= workflow.now():
                await workflow.wait_condition(
                    lambda old=deadline: self._book.expiry_deadline() != old  # type: ignore[misc]
                )
                continue
            await workflow.sleep(deadline - workflow.now() + timedelta(seconds=1))
            if self._book.expire_if_due(workflow.now(), self._build()):
                self._dirty = True

    async def _deliver_effects(self) -> None:
        """Approved messages, fraud cases and tier changes, and from build 0.4.1 the
        rewards of redemptions, are delivered once each (one EffectWorkflow per proposal
        or redemption and content: activities.outbox)."""
        while True:
            await workflow.wait_condition(
                lambda: (
                    (
                        bool(self._desk.proposals.undelivered())
                        or self._book.undelivered_reward() is not None
                    )
                    and not self._closing
                )
            )
            undelivered = self._desk.proposals.undelivered()
            if undelivered:
                await self._hand_over_proposal(undelivered[0])
            else:
                reward = self._book.undelivered_reward()
                assert reward is not None
                await self._hand_over_reward(reward)

    async def _hand_over_proposal(self, record: dict[str, Any]) -> None:
        entry = OutboxEntry(
            proposal_id=record["id"],
            member_id=self._book.member_id,
            kind=OUTBOX_KINDS[record["action"]],
            payload={
                "action": record["action"],
                "arguments": record["arguments"],
                "reason": record["reason"],
                "decision_reason": record["decision_reason"],
            },
            decided_by=record["decided_by"],
            decided_at=record["decided_at"],
        )
        receipt = await self._put(entry, record)
        if receipt is not None:
            record["effect"] = "delivered"
            record["outbox_id"] = receipt.row_id
            record.pop("effect_error", None)

    async def _hand_over_reward(self, record: dict[str, Any]) -> None:
        entry = OutboxEntry(
            proposal_id=reward_effect_source(self._book.member_id, record["request_id"]),
            member_id=self._book.member_id,
            kind=REWARD_EFFECT_ACTION,
            payload={
                "action": REWARD_EFFECT_ACTION,
                "arguments": reward_effect_arguments(record),
                "reason": f"redeemed {record['name']} for {record['cost']:,} points",
                "decision_reason": "",
            },
            decided_by="member",
            decided_at=record["requested_at"],
        )
        receipt = await self._put(entry, record)
        if receipt is not None:
            self._book.reward_handed(record["request_id"], receipt.effect_id)
            record.pop("effect_error", None)

    async def _put(self, entry: OutboxEntry, record: dict[str, Any]) -> OutboxReceipt | None:
        """Hand one effect to the outbox; None when every retry failed (the error is on
        the record and the loop tries again after OUTBOX_PAUSE)."""
        try:
            return await workflow.execute_activity(
                outbox_deliver,
                entry,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=OUTBOX_RETRY,
            )
        except ActivityError as error:
            record["effect_error"] = str(error.cause or error).splitlines()[0][:300]
            try:
                await workflow.wait_condition(lambda: self._closing, timeout=OUTBOX_PAUSE)
            except TimeoutError:
                pass
            return None

    async def _expire_proposals(self) -> None:
        """A durable timer for the earliest pending deadline; expiry changes nothing else."""
        while True:
            deadline = self._desk.proposals.next_expiry()
            if deadline is None:
                await workflow.wait_condition(
                    lambda: self._desk.proposals.next_expiry() is not None
                )
                continue
            now = workflow.now()
            if deadline > now:
                try:
                    await workflow.wait_condition(
                        lambda d=deadline: self._desk.proposals.next_expiry() != d,  # type: ignore[misc]
                        timeout=deadline - now,
                    )
                    continue
                except TimeoutError:
                    pass
            if self._desk.expire(workflow.now()):
                self._dirty = True

    async def _publish_soon(self) -> None:
        """Publish at most once per PUBLISH_INTERVAL while events stream in.

        A member that hears from its rider now and then publishes at once; a busy
        one batches a second of changes into one upsert instead of one per event.
        """
        since = workflow.now() - self._published_at if self._published_at else None
        if since is not None and since < PUBLISH_INTERVAL:
            try:
                await workflow.wait_condition(
                    self._should_continue, timeout=PUBLISH_INTERVAL - since
                )
            except TimeoutError:
                pass
        self._publish()

    def _publish(self) -> None:
        """Upsert the search attributes the members table filters on, when they change."""
        s = self._book.s
        drill_bug = self._book.drill or ""
        wanted: dict[str, Any] = {
            "tier": s.tier,
            "points": s.points,
            "last": s.watermark,
            "drill": drill_bug,
            "pending": self._desk.proposals.pending_count(),
        }
        updates: list[SearchAttributeUpdate[Any]] = []
        if wanted["tier"] != self._published.get("tier"):
            updates.append(search_attributes.TIER.value_set(s.tier))
        if wanted["points"] != self._published.get("points"):
            updates.append(search_attributes.POINTS.value_set(s.points))
        if wanted["last"] != self._published.get("last") and self._book.last_event_at:
            updates.append(search_attributes.LAST_EVENT_AT.value_set(self._book.last_event_at))
        if wanted["drill"] != self._published.get("drill", ""):
            updates.append(search_attributes.DRILL.value_set(drill_bug))
        if wanted["pending"] != self._published.get("pending", 0):
            updates.append(search_attributes.PENDING_PROPOSALS.value_set(wanted["pending"]))
        if updates:
            workflow.upsert_search_attributes(updates)
        self._published = wanted
        self._published_at = workflow.now()
        self._dirty = False
