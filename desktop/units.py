"""Numbers as people read them: "3 days", "2 h 5 min", "0.0042 USD", "12,345",
and times in the operator's time zone (with the UTC time for a tooltip)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def duration_text(seconds: float) -> str:
    """A duration in the largest units that read well: "40 s", "5 min", "2 h 5 min",
    "1 day 3 h", "3 days"."""
    seconds = max(0, int(seconds))
    if seconds < MINUTE:
        return f"{seconds} s"
    if seconds < HOUR:
        return f"{seconds // MINUTE} min"
    if seconds < DAY:
        hours, minutes = divmod(seconds // MINUTE, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(seconds // HOUR, 24)
    if days < 2 and hours:
        return f"{days} day {hours} h"
    return f"{days} day" if days == 1 else f"{days} days"


_UNITS = (("day", DAY), ("h", HOUR), ("min", MINUTE), ("s", 1))
_UNIT_NAMES = {
    "d": DAY, "day": DAY, "days": DAY,
    "h": HOUR, "hr": HOUR, "hour": HOUR, "hours": HOUR,
    "m": MINUTE, "min": MINUTE, "mins": MINUTE, "minute": MINUTE, "minutes": MINUTE,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d[\d,]*)\s*([a-z]*)")


def exact_duration_text(seconds: int) -> str:
    """A duration with every unit it has, so reading it back gives the same number:
    "3 days", "1 day 1 h 1 min 1 s", "0 s"."""
    seconds = max(0, int(seconds))
    parts = []
    for name, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(
                f"{count:,} {name}s" if name == "day" and count != 1 else f"{count:,} {name}"
            )
    return " ".join(parts) or "0 s"


def parse_duration(text: str) -> int | None:
    """Seconds from "3 days", "2 h 5 min", "90 min", "72h", or a bare number of
    seconds; None when the text is not a duration."""
    text = text.strip().lower()
    if not text:
        return None
    total, end = 0, 0
    for match in _DURATION_PART.finditer(text):
        if text[end : match.start()].strip():
            return None  # something between the parts that is not one
        number, unit = match.group(1).replace(",", ""), match.group(2)
        if unit not in _UNIT_NAMES and unit != "":
            return None
        total += int(number) * _UNIT_NAMES.get(unit, 1)
        end = match.end()
    if end == 0 or text[end:].strip():
        return None
    return total


def money_text(amount: float, currency: str = "USD") -> str:
    """An amount with its currency; small amounts (model calls) keep four decimals."""
    digits = 2 if abs(amount) >= 1 or amount == 0 else 4
    return f"{amount:,.{digits}f} {currency}"


def count_text(count: int) -> str:
    return f"{count:,}"


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 string ("...Z" included) or a datetime, as an aware datetime; None
    for anything else."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def local_time_text(value: object, *, seconds: bool = True) -> str:
    """A time in the operator's time zone ("2026-03-01 11:01:00"); "" when not a time."""
    moment = parse_time(value)
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def utc_time_text(value: object) -> str:
    """The same time in UTC, for a tooltip ("2026-03-01 10:01:00 UTC")."""
    moment = parse_time(value)
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
