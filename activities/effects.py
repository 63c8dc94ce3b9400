"""Delivering effects (see workflows/effects.py): an HTTP webhook and email over SMTP.

Each call is one attempt and returns what the destination answered; the effect workflow
decides whether and when to try again. Secrets come from the OS keyring through the
`secret` callable the worker passes in (the webhook signing secret, the SMTP password),
at the moment of sending: they are in no argument, result, history or log.

A webhook request is signed: `Loyalty-Desk-Signature: v1=<hex>` is the HMAC-SHA256, with
the signing secret, of `<timestamp>.<body>` where `<timestamp>` is the
`Loyalty-Desk-Timestamp` header (Unix seconds) and `<body>` the exact bytes received
(see `verify_signature`, and the README for a receiver's side). `Idempotency-Key` names
the effect (proposal id and content digest): the same on every attempt, by any worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import aiohttp
import aiosmtplib
from temporalio import activity
from temporalio.client import Client

from activities.support import heartbeating, memo_of
from recovery.found import if_found
from workflows.contract import QUERY_PROPOSALS, member_workflow_id
from workflows.effects import (
    DESTINATIONS_ACTIVITY,
    EMAIL_ACTIVITY,
    PROPOSAL_ACTIVITY,
    WEBHOOK_ACTIVITY,
    DeliveryAnswer,
    DeliveryRequest,
    Destination,
    DestinationsRequest,
    ProposalNow,
    ProposalRequest,
)
from workflows.effects_config import MEMO_CONFIG, EffectsConfig, effects_config_workflow_id
from workflows.member_messages import QUERY_REDEMPTION
from workflows.proposals import content_digest

SIGNATURE_HEADER = "Loyalty-Desk-Signature"
TIMESTAMP_HEADER = "Loyalty-Desk-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_TOLERANCE_S = 300  # a receiver refuses timestamps further off than this
WEBHOOK_SECRET = "webhook"
SMTP_SECRET = "smtp"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)
SMTP_TIMEOUT_S = 20.0
ANSWER_BYTES = 1_000

SecretSource = Callable[[str], "str | None"]


def body_bytes(body: dict[str, Any]) -> bytes:
    """The request body: canonical JSON, so every attempt sends the same bytes."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def verify_signature(
    secret: str,
    headers: Any,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver checks: the signature over the timestamp and the exact body, and a
    timestamp close to now (a captured request can't be replayed later)."""
    timestamp = headers.get(TIMESTAMP_HEADER) or ""
    given = headers.get(SIGNATURE_HEADER) or ""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)


def read_config(memo: Mapping[str, Any]) -> EffectsConfig:
    raw = memo.get(MEMO_CONFIG)
    if not isinstance(raw, dict):
        return EffectsConfig()
    destinations = raw.get("destinations")
    smtp = raw.get("smtp")
    changes = raw.get("changes")
    return EffectsConfig(
        destinations=destinations if isinstance(destinations, dict) else {},
        smtp=smtp if isinstance(smtp, dict) else {},
        version=int(raw.get("version") or 0),
        changes=changes if isinstance(changes, list) else [],
    )


async def current_config(client: Client, deployment: str) -> EffectsConfig:
    """The deployment's effect destinations, from the config workflow's memo (no worker
    needs to answer); none configured when nobody set any."""
    memo = await memo_of(client, effects_config_workflow_id(deployment))
    return EffectsConfig() if memo is None else read_config(memo)


def _text(raw: bytes) -> str:
    return " ".join(raw[:ANSWER_BYTES].decode("utf-8", "replace").split())


def http_answer(status: int, text: str, retry_after: str | None) -> DeliveryAnswer:
    """2xx delivered; 408, 429 and 5xx tried again; any other 4xx (and a redirect) final."""
    answer = f"HTTP {status}" + (f": {text}" if text else "")
    if 200 <= status < 300:
        return DeliveryAnswer(True, answer)
    if 300 <= status < 400:
        return DeliveryAnswer(False, answer + " (a redirect: configure the final URL)", False)
    if status in (408, 429) or status >= 500:
        delay = 0.0
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after.strip())
        return DeliveryAnswer(False, answer, True, delay)
    return DeliveryAnswer(False, answer, False)


class Deliverer:
    """The worker's delivery activities; `secret(name)` reads the OS keyring."""

    def __init__(self, client: Client, secret: SecretSource) -> None:
        self._client = client
        self._secret = secret

    @activity.defn(name=DESTINATIONS_ACTIVITY)
    async def destinations(self, request: DestinationsRequest) -> list[Destination]:
        config = await current_config(self._client, request.deployment)
        return config.for_kind(request.kind)

    @activity.defn(name=PROPOSAL_ACTIVITY)
    async def proposal(self, request: ProposalRequest) -> ProposalNow:
        """The member's proposal as it reads now (its `proposals` query); for a reward,
        whether the redemption was cancelled (found, with no digest: do not deliver)."""
        handle = self._client.get_workflow_handle(member_workflow_id(request.member_id))
        if request.redemption:
            return await self._redemption(handle, request.redemption)
        records = await if_found(handle.query(QUERY_PROPOSALS))  # None: no such member
        for record in records or []:
            if record.get("id") == request.proposal_id:
                return ProposalNow(
                    found=True,
                    digest=content_digest(record.get("action"), record.get("arguments")),
                    status=str(record.get("status", "")),
                )
        return ProposalNow(found=False)

    async def _redemption(self, handle: Any, request_id: str) -> ProposalNow:
        record = await if_found(handle.query(QUERY_REDEMPTION, request_id))
        if isinstance(record, dict) and record.get("status") == "cancelled":
            return ProposalNow(found=True, digest="", status="cancelled")
        return ProposalNow(found=False)

    @activity.defn(name=WEBHOOK_ACTIVITY)
    async def webhook(self, request: DeliveryRequest) -> DeliveryAnswer:
        secret = await asyncio.to_thread(self._secret, WEBHOOK_SECRET)
        if not secret:
            return DeliveryAnswer(
                False,
                "no webhook signing secret in this machine's keyring "
                "(`loyalty-desk secrets set webhook`)",
                retryable=False,
            )
        body = body_bytes(request.body)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "loyalty-desk",
            IDEMPOTENCY_HEADER: quote(request.idempotency_key, safe=":/@-_.~"),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
            "Loyalty-Desk-Attempt": str(request.attempt),
        }
        try:
            async with (
                heartbeating(),
                aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
                session.post(
                    request.destination.url, data=body, headers=headers, allow_redirects=False
                ) as response,
            ):
                raw = await response.content.read(ANSWER_BYTES)
                return http_answer(response.status, _text(raw), response.headers.get("Retry-After"))
        except TimeoutError:
            return DeliveryAnswer(False, "no answer within the timeout", True)
        except aiohttp.ClientError as error:
            return DeliveryAnswer(False, f"no answer: {type(error).__name__}: {error}", True)

    @activity.defn(name=EMAIL_ACTIVITY)
    async def email(self, request: DeliveryRequest) -> DeliveryAnswer:
        smtp = request.destination.smtp
        if not smtp.get("host"):
            return DeliveryAnswer(False, "no SMTP server configured", retryable=False)
        username = smtp.get("username") or None
        password = None
        if username:
            password = await asyncio.to_thread(self._secret, SMTP_SECRET)
            if not password:
                return DeliveryAnswer(
                    False,
                    "no SMTP password in this machine's keyring (`loyalty-desk secrets set smtp`)",
                    retryable=False,
                )
        try:
            message = email_message(request, str(smtp["sender"]))
        except ValueError as error:  # a member id that makes no address (a line break, say)
            return DeliveryAnswer(False, f"no email address: {error}", retryable=False)
        starttls = bool(smtp.get("starttls", True))
        try:
            context = ssl.create_default_context(cafile=smtp.get("ca_file") or None)
        except (OSError, ssl.SSLError) as error:
            return DeliveryAnswer(False, f"the SMTP CA file: {error}", retryable=False)
        try:
            async with heartbeating():
                errors, reply = await aiosmtplib.send(
                    message,
                    hostname=str(smtp["host"]),
                    port=int(smtp.get("port") or 587),
                    username=username,
                    password=password,
                    start_tls=starttls,
                    use_tls=False,
                    tls_context=context if starttls else None,
                    timeout=SMTP_TIMEOUT_S,
                )
        except aiosmtplib.SMTPAuthenticationError as error:
            return DeliveryAnswer(False, f"SMTP {error.code}: {error.message}", retryable=False)
        except aiosmtplib.SMTPResponseException as error:
            # 4xx: a temporary refusal; 5xx: permanent
            return DeliveryAnswer(
                False, f"SMTP {error.code}: {error.message}", retryable=error.code < 500
            )
        except ssl.SSLCertVerificationError as error:
            return DeliveryAnswer(
                False, f"the SMTP server's certificate: {error.verify_message}", retryable=False
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return DeliveryAnswer(False, f"no answer: {type(error).__name__}: {error}", True)
        if errors:
            refused = "; ".join(f"{k}: {v.code} {v.message}" for k, v in errors.items())
            return DeliveryAnswer(False, f"SMTP refused {refused}", retryable=False)
        return DeliveryAnswer(True, f"SMTP accepted: {reply}")


def email_message(request: DeliveryRequest, sender: str) -> EmailMessage:
    """The email for a message effect; its Message-ID is the effect's own on every attempt."""
    body = request.body
    to = request.destination.to.replace("{member_id}", str(body.get("member_id", "")))
    if to.count("@") != 1 or any(c.isspace() or c in ',;<>"' for c in to):
        raise ValueError(f"{to[:80]!r} is not one plain address")
    stable = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:32]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "A message from your loyalty program"
    message["Message-ID"] = f"<{stable}@loyalty-desk>"
    message["X-Loyalty-Desk-Effect"] = quote(request.idempotency_key, safe=":/@-_.~")
    text = (body.get("arguments") or {}).get("text") or ""
    message.set_content(str(text) + "\n")
    return message
