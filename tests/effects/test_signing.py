"""The pieces a receiver and a destination see, without a server: the signature a
receiver checks (and what it must refuse), which answers are tried again, and an email
address a member id could bend into a header injection."""

from __future__ import annotations

import time

import pytest

from activities.effects import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    body_bytes,
    email_message,
    http_answer,
    signature,
    verify_signature,
)
from tests.effects.kit import valid_signature
from workflows.effects import DeliveryRequest, Destination

SECRET = "whsec-test"


def signed(body: bytes, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}


def test_a_receiver_accepts_the_signature_and_refuses_every_forgery() -> None:
    body = body_bytes({"member_id": "m1", "arguments": {"text": "hi"}})
    headers = signed(body)
    assert verify_signature(SECRET, headers, body)
    assert valid_signature(SECRET, headers, body)  # the README's recipe agrees
    assert not verify_signature(SECRET, headers, body.replace(b"hi", b"ho"))  # body changed
    assert not verify_signature("another secret", headers, body)
    stale = signed(body, at=time.time() - 3600)  # a captured request replayed an hour later
    assert not verify_signature(SECRET, stale, body)
    moved = {**headers, TIMESTAMP_HEADER: str(int(headers[TIMESTAMP_HEADER]) + 1)}
    assert not verify_signature(SECRET, moved, body)  # the timestamp is signed too
    assert not verify_signature(SECRET, {}, body)


@pytest.mark.parametrize(
    ("status", "ok", "retryable"),
    [
        (200, True, True),
        (204, True, True),
        (301, False, False),
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (408, False, True),
        (429, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
def test_which_answers_are_tried_again(status: int, ok: bool, retryable: bool) -> None:
    answer = http_answer(status, "text", None)
    assert (answer.ok, answer.retryable) == (ok, retryable)
    assert answer.answer.startswith(f"HTTP {status}")


def test_retry_after_is_read() -> None:
    assert http_answer(429, "", "7").retry_after_s == 7.0


def test_a_member_id_cannot_add_recipients_or_headers_to_an_email() -> None:
    def request(member: str) -> DeliveryRequest:
        return DeliveryRequest(
            effect_id="e",
            idempotency_key="p/d",
            destination=Destination("email", to="{member_id}@members.test"),
            body={"member_id": member, "arguments": {"text": "hello"}},
            attempt=1,
        )

    message = email_message(request("m-1"), "desk@loyalty.test")
    assert message["To"] == "m-1@members.test" and message["Message-ID"]
    for evil in ("m\r\nBcc: all@evil.test", "m, all@evil.test", "a@b", "m <x@evil.test>"):
        with pytest.raises(ValueError):
            email_message(request(evil), "desk@loyalty.test")
