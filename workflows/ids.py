"""Workflow ids of the public contract, importable without any workflow code."""

from __future__ import annotations

from workflows.contract import MEMBER_PREFIX, member_id_of, member_workflow_id

__all__ = [
    "MAX_NAME",
    "MEMBER_PREFIX",
    "BadNameError",
    "check_build_id",
    "check_name",
    "member_id_of",
    "member_workflow_id",
]


# Build ids and deployment names (and task queues) go into visibility queries, audit
# entries, log file names and the server's deployment records, where other people's
# commands read them back: a quote in one once broke `release list` for everyone. So
# they are held to a safe set, checked before any server call: letters, digits, `.`,
# `_`, `-` (and `+`, for build ids only: versions such as `1.2+drill-zero-on-trip`),
# starting with a letter or digit, at most 64 characters. Never a quote, a colon (the
# server joins deployment and build with one), a slash, a space or a backslash.
MAX_NAME = 64
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_BUILD_CHARS = _NAME_CHARS | {"+"}


class BadNameError(ValueError):
    """A build id or name outside the safe set; the message is one line for people."""


def check_name(value: str, what: str = "name", *, chars: frozenset[str] = _NAME_CHARS) -> str:
    """`value` if it is in the safe set (see above), else BadNameError saying why."""
    if not isinstance(value, str) or not value:
        raise BadNameError(f"the {what} is empty")
    if len(value) > MAX_NAME:
        raise BadNameError(f"the {what} is longer than {MAX_NAME} characters")
    bad = sorted({c for c in value if c not in chars})
    if bad:
        allowed = "letters, digits, . _ -" + (" +" if "+" in chars else "")
        shown = " ".join(repr(c) for c in bad[:5])
        raise BadNameError(f"the {what} {value!r} has {shown}: use only {allowed}")
    if not value[0].isalnum():
        raise BadNameError(f"the {what} {value!r} must start with a letter or digit")
    return value


def check_build_id(value: str) -> str:
    return check_name(value, "build id", chars=_BUILD_CHARS)
