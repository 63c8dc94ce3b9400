"""What a member carries into its next run, held under a byte budget whatever it received.

The SDK refuses any payload over 2 MiB; a continue-as-new input over it fails the
member's workflow task on every retry, and the member is jammed for good. Each part of
the carry has its own bound (digests for long ids, clipped texts, counts); this is the
last line: the carry is measured as the payload converter writes it, and if the bounds
still add up to more than `CARRY_BUDGET` the least needed parts shrink, in a fixed
order, until it fits. Pure code: the same input always gives the same carry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workflows.rules import clip_text, json_bytes

CARRY_BUDGET = 1_000_000  # bytes of JSON, half the SDK's payload limit
SHORT_TEXT_BYTES = 300  # texts of queued triggers and proposals when they must shrink
DECIDED_MIN = 10  # decided proposals kept when they must shrink (pending ones always are)
SEEN_MIN = 512  # the dedup window never shrinks below this many ids
LEDGER_MIN = 20
REJECTIONS_MIN = 10
REDEMPTIONS_MIN = 100  # redemptions remembered when they must shrink (idempotency)
REDEMPTION_TEXT_BYTES = 60  # a kept redemption's cancel reason when they must shrink


def carried_bytes(carry: Any) -> int:
    return json_bytes(dataclasses.asdict(carry))


def fit(carry: Any, budget: int = CARRY_BUDGET) -> list[str]:
    """Shrink `carry` (a MemberInput, in place) until it fits in `budget` bytes.

    Returns what was shrunk, for the workflow's log; empty when it already fit."""
    steps = [
        ("trigger texts", _clip_queue),
        ("decided proposals", _drop_decided),
        ("proposal texts", _clip_proposals),
        ("ledger", _fold_ledger),
        ("rejections", _trim_rejections),
        ("redemption texts", _clip_redemptions),
        ("redemptions", _forget_redemptions),
        ("dedup window", _halve_seen),
    ]
    done: list[str] = []
    for name, step in steps:
        while carried_bytes(carry) > budget:
            if not step(carry):
                break
            if name not in done:
                done.append(name)
    return done


def _clip_queue(carry: Any) -> bool:
    changed = False
    for trigger in carry.agent.queue if carry.agent else []:
        text = trigger.get("ticket_text")
        if isinstance(text, str) and json_bytes(text) > SHORT_TEXT_BYTES:
            trigger["ticket_text"] = clip_text(text, SHORT_TEXT_BYTES)
            trigger["truncated"] = True
            changed = True
    return changed


def _drop_decided(carry: Any) -> bool:
    if carry.agent is None:
        return False
    records = carry.agent.proposals
    decided = [r for r in records if r.get("status") != "pending"]
    if len(decided) <= DECIDED_MIN:
        return False
    # drop the older half of the decided ones beyond the minimum
    drop = {id(r) for r in decided[: max(1, (len(decided) - DECIDED_MIN + 1) // 2)]}
    carry.agent.proposals = [r for r in records if id(r) not in drop]
    return True


def _clip_proposals(carry: Any) -> bool:
    changed = False
    for record in carry.agent.proposals if carry.agent else []:
        for holder, key in (
            (record, "reason"),
            (record, "decision_reason"),
            (record.get("arguments") or {}, "text"),
        ):
            text = holder.get(key)
            if isinstance(text, str) and json_bytes(text) > SHORT_TEXT_BYTES:
                holder[key] = clip_text(text, SHORT_TEXT_BYTES)
                changed = True
    return changed


def _fold_ledger(carry: Any) -> bool:
    snapshot = carry.snapshot
    if snapshot is None or len(snapshot.ledger) <= LEDGER_MIN:
        return False
    keep = max(LEDGER_MIN, len(snapshot.ledger) // 2)
    dropped = snapshot.ledger[:-keep]
    snapshot.ledger_base += sum(e["delta"] for e in dropped)
    del snapshot.ledger[:-keep]
    return True


def _trim_rejections(carry: Any) -> bool:
    snapshot = carry.snapshot
    if snapshot is None or len(snapshot.rejections) <= REJECTIONS_MIN:
        return False
    del snapshot.rejections[:-REJECTIONS_MIN]
    return True


def _clip_redemptions(carry: Any) -> bool:
    """Cancel reasons clipped short, delivery errors dropped (the next failure says it
    again): the records keep what idempotency and the ledger need."""
    snapshot = carry.snapshot
    changed = False
    for record in snapshot.redemptions.values() if snapshot else []:
        reason = record.get("cancel_reason")
        if isinstance(reason, str) and json_bytes(reason) > REDEMPTION_TEXT_BYTES:
            record["cancel_reason"] = clip_text(reason, REDEMPTION_TEXT_BYTES)
            changed = True
        if record.pop("effect_error", None) is not None:
            changed = True
    return changed


def _forget_redemptions(carry: Any) -> bool:
    """The older half of the redemptions beyond REDEMPTIONS_MIN, never one whose reward
    is still to be handed to the outbox (a retry of a forgotten request is a new one)."""
    snapshot = carry.snapshot
    if snapshot is None or len(snapshot.redemptions) <= REDEMPTIONS_MIN:
        return False
    excess = (len(snapshot.redemptions) - REDEMPTIONS_MIN + 1) // 2
    old = [k for k, r in snapshot.redemptions.items() if r.get("effect") != "pending"][:excess]
    for key in old:
        del snapshot.redemptions[key]
    return bool(old)


def _halve_seen(carry: Any) -> bool:
    snapshot = carry.snapshot
    if snapshot is None or len(snapshot.seen) <= SEEN_MIN:
        return False
    keep = max(SEEN_MIN, len(snapshot.seen) // 2)
    for key in list(snapshot.seen)[: len(snapshot.seen) - keep]:
        del snapshot.seen[key]
    return True
