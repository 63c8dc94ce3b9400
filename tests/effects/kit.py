"""Real receivers on loopback for the effect tests: an aiohttp webhook that checks each
request's signature itself (not with the app's code) and applies each Idempotency-Key
once, and an aiosmtpd server that insists on STARTTLS and a login."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from runtime import effects
from tests.agent.conftest import CHARGE, AgentDeployment, ticket
from tests.chaos.cluster import HOST, free_port, make_pki
from tests.conftest import eventually


def valid_signature(secret: str, headers: Any, body: bytes) -> bool:
    """The README's recipe, written out again: HMAC-SHA256 of `timestamp.body`."""
    timestamp = headers.get("Loyalty-Desk-Timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(
        "v1=" + expected.hexdigest(), headers.get("Loyalty-Desk-Signature", "")
    )


@dataclass
class Received:
    key: str
    body: bytes
    signed: bool
    answered: int = 0


@dataclass
class Webhook:
    """What arrived, and what to answer: `script` statuses first (with `script_text`),
    then 200; while `hold` is set, requests wait for it to clear."""

    secret: str
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    script: list[int] = field(default_factory=list)
    script_text: str = "scripted failure"
    hold: asyncio.Event | None = None  # requests wait until it is set
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = Received(
            request.headers.get("Idempotency-Key", ""),
            body,
            valid_signature(self.secret, request.headers, body),
        )
        self.requests.append(received)
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        if not received.signed:
            received.answered = 401
            return web.Response(status=401, text="bad signature")
        if self.script:
            received.answered = self.script.pop(0)
            return web.Response(status=received.answered, text=self.script_text)
        received.answered = 200
        self.applied.setdefault(received.key, json.loads(body))
        return web.Response(text="applied")

    def keys(self) -> list[str]:
        return [r.key for r in self.requests]


@asynccontextmanager
async def webhook(secret: str) -> AsyncIterator[Webhook]:
    hook = Webhook(secret)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    hook.url = f"http://{HOST}:{port}/hook"
    try:
        yield hook
    finally:
        if hook.hold is not None:
            hook.hold.set()
        await runner.cleanup()


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path
    username: str
    password: str
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # reached only after STARTTLS and a login (require_starttls, auth_required)
        assert session.ssl is not None
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@asynccontextmanager
async def smtp_server(directory: Path, username: str, password: str) -> AsyncIterator[Mailbox]:
    pki = make_pki(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    box = Mailbox(HOST, free_port(), pki.ca, username, password)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode(),
            data.password.decode(),
        ) == (username, password)
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller = Controller(
        box,
        hostname=HOST,
        port=box.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    await asyncio.to_thread(controller.start)
    try:
        yield box
    finally:
        await asyncio.to_thread(controller.stop)


async def approved_message(agents: AgentDeployment, member: str) -> dict[str, Any]:
    await agents.feed(member, [ticket(member, 1, CHARGE)])
    proposals = {p["action"]: p for p in await agents.proposals_made(member, 2)}
    message = proposals["message_member"]
    await agents.decide(message["id"], True, "fine to send")
    return message


async def effect_of(agents: AgentDeployment, member: str, status: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        rows = await effects.list_effects(agents.client, agents.deployment.target, member=member)
        return next((r for r in rows if r["status"] == status), None)

    row: dict[str, Any] = await eventually(find, timeout=60, interval=0.3)
    return row
