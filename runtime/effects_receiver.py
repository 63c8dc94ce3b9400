"""`loyalty-desk effects receive`: a webhook receiver for trying effects out locally.

It does what a real receiver must: checks the signature with the webhook secret from
this machine's keyring (over the timestamp and the exact body, the timestamp within
five minutes), answers 401 to a bad one, and applies each Idempotency-Key once
(a repeat gets 200 and is not printed again). Loopback only by default.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from activities.effects import IDEMPOTENCY_HEADER, WEBHOOK_SECRET, verify_signature
from runtime import secrets


def make_app(secret: str) -> web.Application:
    seen: set[str] = set()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(secret, request.headers, body):
            print("refused a request with a bad signature", file=sys.stderr, flush=True)
            return web.Response(status=401, text="bad signature")
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        if key in seen:
            return web.Response(text="already received")
        seen.add(key)
        effect = json.loads(body)
        text = (effect.get("arguments") or {}).get("text")
        print(
            f"{effect.get('kind')} for {effect.get('member_id')}: "
            + (repr(text) if text else json.dumps(effect.get("arguments")))
            + f"  [{key}]",
            flush=True,
        )
        return web.Response(text="received")

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app


async def _serve(host: str, port: int) -> None:
    secret = secrets.get_secret(WEBHOOK_SECRET)
    if not secret:
        raise ValueError("no webhook secret in the keyring: `loyalty-desk secrets set webhook`")
    runner = web.AppRunner(make_app(secret))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"receiving effects on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def serve_forever(host: str, port: int) -> int:
    asyncio.run(_serve(host, port))
    return 0
