"""Sort keys of the members table's columns (desktop/members_store.py), without Qt: what
makes a tier, a time or a build comparable, and where members without a value go."""

from __future__ import annotations

import functools
import re
from operator import itemgetter

from workflows.rules import TIER_NAMES

DIGITS = re.compile(r"\d+")
MEMBER_ID = itemgetter("member_id")
MISSING = 1 << 80  # beyond any value a column holds (64-bit integers, times in µs)


def tier_ranks(last: bool) -> tuple[dict[str, int], int]:
    """Tier names by rank, and the rank of no tier (last either way)."""
    return {name: rank for rank, name in enumerate(TIER_NAMES)}, len(TIER_NAMES) if last else -1


def none_text(last: bool) -> str:
    return "\xff" if last else ""


@functools.lru_cache(maxsize=256)  # few builds
def natural(build: str) -> str:
    """A build id as text that sorts 0.10 after 0.9."""
    return DIGITS.sub(lambda m: m.group().zfill(12), build)


def time_key(text: str) -> int:
    """An ISO time in UTC ("...Z" or "+00:00", with or without a fraction) as its
    microseconds in one number that sorts by time; a text that is no such time, -1
    (before every time)."""
    if not isinstance(text, str):
        return -1
    whole, _, fraction = text.replace("Z", "").replace("+00:00", "").partition(".")
    digits = whole.replace("-", "").replace("T", "").replace(":", "")
    fraction = fraction[:6].ljust(6, "0")
    if len(digits) != 14 or not digits.isdigit() or not fraction.isdigit():
        return -1
    return int(digits) * 1_000_000 + int(fraction)
