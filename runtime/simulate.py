"""Generated member traffic: deterministic for a seed, so a feed can be repeated."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
TICKETS = (
    "My last trip was charged twice, can you check?",
    "The driver took a long detour and I paid extra.",
    "I did not get points for my ride yesterday.",
    "App crashed during checkout, was my purchase counted?",
)


def member_ids(members: int, prefix: str = "sim") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(members)]


def simulate(
    events: int, members: int, seed: int = 0, *, prefix: str = "sim", start: datetime = START
) -> Iterator[dict[str, Any]]:
    """`events` events spread evenly over `members` members, in a realistic mix."""
    if events < 0 or members <= 0:
        raise ValueError("--simulate needs a positive number of members and events >= 0")
    rng = random.Random(seed)
    ids = member_ids(members, prefix)
    clocks = {m: start + timedelta(minutes=rng.randrange(0, 24 * 60)) for m in ids}
    earned: dict[str, list[str]] = {m: [] for m in ids}
    counters = dict.fromkeys(ids, 0)
    sent = 0
    while sent < events:
        order = ids[:]
        rng.shuffle(order)
        for member in order:
            if sent >= events:
                break
            clocks[member] += timedelta(minutes=rng.randrange(30, 3 * 24 * 60))
            counters[member] += 1
            event_id = f"{prefix}{seed}-{member}-{counters[member]}"
            base = {
                "event_id": event_id,
                "member_id": member,
                "occurred_at": clocks[member].isoformat().replace("+00:00", "Z"),
            }
            roll = rng.random()
            if roll < 0.06 and earned[member]:
                target = earned[member].pop(rng.randrange(len(earned[member])))
                yield {"type": "refund", **base, "refers_to": target}
            elif roll < 0.10:
                yield {"type": "support_ticket", **base, "text": rng.choice(TICKETS)}
            elif roll < 0.30:
                earned[member].append(event_id)
                yield {"type": "purchase", **base, "amount_cents": rng.randrange(500, 30_000)}
            else:
                earned[member].append(event_id)
                yield {"type": "trip_completed", **base, "fare_cents": rng.randrange(700, 9_000)}
            sent += 1
