"""Where effects go: one EffectsConfigWorkflow per deployment holds the destinations of
each kind (webhooks, email) and the SMTP server, changed by a validated update that names
who changed it and why; its memo is what the worker's effect activities read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from workflows.config_record import hold_then_continue, note_change, who_and_why_problem
    from workflows.effects import (
        DESTINATION_TYPES,
        KINDS,
        Destination,
    )

EFFECTS_CONFIG_PREFIX = "loyalty-desk-effects-"
MEMO_CONFIG = "config"
CONFIG_CHANGES_KEEP = 20
CONFIG_CHANGES_PER_RUN = 500
MAX_TEXT = 500
MAX_URL = 2_000
MAX_DESTINATIONS = 4


def effects_config_workflow_id(deployment: str) -> str:
    return f"{EFFECTS_CONFIG_PREFIX}{deployment}"


# -- where effects go: one configuration per deployment -------------------------------


@dataclass
class EffectsConfig:
    """Destinations per kind (lists of Destination-shaped dicts) and the SMTP server."""

    destinations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    smtp: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # newest last

    def for_kind(self, kind: str) -> list[Destination]:
        found = []
        for item in self.destinations.get(kind) or []:
            destination = Destination(
                type=str(item.get("type", "")),
                url=str(item.get("url", "")),
                to=str(item.get("to", "")),
            )
            if destination.type == "email":
                destination.smtp = dict(self.smtp)
            found.append(destination)
        return found


@dataclass
class EffectsConfigChange:
    """Kinds given in `destinations` get exactly those destinations (an empty list: none);
    `smtp`, when given, replaces the SMTP settings."""

    destinations: dict[str, list[dict[str, Any]]]
    actor: str
    reason: str
    smtp: dict[str, Any] | None = None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_problem(url: object) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return "a webhook needs a URL"
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        return "the webhook URL is too long or holds spaces"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"the webhook {url[:80]!r} is not an http(s) URL with a host"
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        return f"the webhook {url[:80]!r} has a bad port"
    if parts.username or parts.password:
        return "no credentials in the webhook URL: the signing secret is in the keyring"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return (
            f"effects are never sent over plain http to {parts.hostname}: use https "
            "(plain http is for 127.0.0.1, ::1 and localhost only)"
        )
    return None


def email_problem(to: object) -> str | None:
    if not isinstance(to, str) or "@" not in to or len(to) > MAX_TEXT:
        return "an email destination needs an address (`{member_id}` is replaced)"
    if any(c.isspace() or c in "\r\n,;<>" for c in to.replace("{member_id}", "")):
        return "the email address holds a space or a separator"
    return None


def smtp_problem(smtp: object) -> str | None:
    if not isinstance(smtp, dict):
        return "smtp must be an object"
    if not smtp:
        return None
    known = {"host", "port", "username", "sender", "starttls", "ca_file"}
    unknown = sorted(set(smtp) - known)
    if unknown:
        return f"unknown smtp setting {unknown[0][:40]!r}"
    host, port = smtp.get("host"), smtp.get("port", 587)
    if not isinstance(host, str) or not host.strip() or len(host) > 255:
        return "the SMTP host is required"
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return "the SMTP port must be a whole number from 1 to 65535"
    sender = smtp.get("sender")
    if not isinstance(sender, str) or "@" not in sender or len(sender) > MAX_TEXT:
        return "the SMTP sender address is required"
    if not isinstance(smtp.get("username", ""), str) or not isinstance(
        smtp.get("ca_file", ""), str
    ):
        return "the SMTP username and CA file are text"
    starttls = smtp.get("starttls", True)
    if not isinstance(starttls, bool):
        return "starttls is true or false"
    if not starttls and not is_loopback(host):
        return "SMTP without STARTTLS is for a server on this machine only"
    return None


def config_problem(change: EffectsConfigChange, current: EffectsConfig | None = None) -> str | None:
    if not isinstance(change.destinations, dict):
        return "destinations must be an object of kind -> list"
    if not change.destinations and change.smtp is None:
        return "nothing to change"
    for kind, items in change.destinations.items():
        if kind not in KINDS:
            return f"unknown effect kind {str(kind)[:40]!r}; known: {', '.join(KINDS)}"
        if not isinstance(items, list) or len(items) > MAX_DESTINATIONS:
            return f"{kind}: a list of at most {MAX_DESTINATIONS} destinations"
        seen = set()
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in DESTINATION_TYPES:
                return f"{kind}: each destination is a webhook or an email"
            if item["type"] == "webhook":
                problem = webhook_problem(item.get("url"))
            elif kind != "message":
                problem = f"{kind}: email goes to members, for messages only"
            else:
                problem = email_problem(item.get("to"))
            if problem:
                return problem
            key = (item["type"], item.get("url") or item.get("to"))
            if key in seen:
                return f"{kind}: the same destination twice"
            seen.add(key)
    if change.smtp is not None:
        problem = smtp_problem(change.smtp)
        if problem:
            return problem
    smtp = change.smtp if change.smtp is not None else (current.smtp if current else {})
    wants_email = any(
        item.get("type") == "email" for items in change.destinations.values() for item in items
    )
    if wants_email and not smtp:
        return "email needs the SMTP server first (`loyalty-desk effects smtp ...`)"
    return who_and_why_problem(change.actor, change.reason, MAX_TEXT)


@workflow.defn(name="EffectsConfigWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class EffectsConfigWorkflow:
    @workflow.init
    def __init__(self, state: EffectsConfig | None = None) -> None:
        self._state = state or EffectsConfig()
        self._changes = 0

    @workflow.run
    async def run(self, state: EffectsConfig | None = None) -> None:
        self._publish()
        await hold_then_continue(self._state, lambda: self._changes, CONFIG_CHANGES_PER_RUN)

    @workflow.update(name="set")
    def set(self, change: EffectsConfigChange) -> EffectsConfig:
        for kind, items in change.destinations.items():
            if items:
                self._state.destinations[kind] = [dict(i) for i in items]
            else:
                self._state.destinations.pop(kind, None)
        if change.smtp is not None:
            self._state.smtp = dict(change.smtp)
        note_change(
            self._state,
            actor=change.actor,
            reason=change.reason,
            keep=CONFIG_CHANGES_KEEP,
            kinds=sorted(change.destinations),
            smtp=change.smtp is not None,
        )
        self._changes += 1
        self._publish()
        return self._state

    @set.validator
    def _validate_set(self, change: EffectsConfigChange) -> None:
        problem = config_problem(change, self._state)
        if problem:
            raise ValueError(problem)

    @workflow.query(name="current")
    def current(self) -> EffectsConfig:
        return self._state

    def _publish(self) -> None:
        workflow.upsert_memo(
            {
                MEMO_CONFIG: {
                    "destinations": self._state.destinations,
                    "smtp": self._state.smtp,
                    "version": self._state.version,
                    "changes": self._state.changes,
                }
            }
        )
