"""Delivery throughput of effects: EffectWorkflows delivering to a webhook on loopback.

A fresh embedded server and the app's worker (a process of its own); a signing secret
in the OS keyring under a service of the bench's own (removed afterwards); an aiohttp
receiver in this process that checks each signature and counts distinct
Idempotency-Keys. N effects are started as the outbox activity starts them (one
EffectWorkflow each) and timed until the receiver has applied all N and every workflow
says delivered. The baseline, in the same process against the same receiver: the same
N signed requests posted straight from here with the same concurrency, no Temporal.

    python -m runtime.testenv python -m bench.effects [--effects 300] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from activities.effects import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    body_bytes,
    signature,
    verify_signature,
)
from bench.common import embedded, emit, machine
from runtime import effects, secrets
from workflows.effects import EffectInput, EffectWorkflow, effect_body, effect_workflow_id


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.keys: set[str] = set()
        self.requests = 0
        self.bad = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        if not verify_signature(self.secret, request.headers, body):
            self.bad += 1
            return web.Response(status=401)
        self.keys.add(request.headers.get(IDEMPOTENCY_HEADER, ""))
        return web.Response(text="ok")


def inputs(n: int, deployment: str, run: str) -> list[EffectInput]:
    return [
        EffectInput(
            proposal_id=f"bench-{run}-{i}:ticket-{i}:0",
            digest=f"{i:020d}",
            member_id=f"bench-{run}-{i}",
            kind="message",
            payload={"action": "message_member", "arguments": {"text": f"Hello {i}"}},
            decided_by="bench",
            decided_at="2026-01-01T00:00:00Z",
            deployment=deployment,
        )
        for i in range(n)
    ]


async def baseline(url: str, secret: str, items: list[EffectInput], concurrency: int) -> float:
    """The same signed requests, straight from this process: requests per second."""
    gate = asyncio.Semaphore(concurrency)

    async def post(session: aiohttp.ClientSession, item: EffectInput) -> None:
        body = effect_body(item)
        raw = body_bytes(body)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: body["idempotency_key"] + "-baseline",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(secret, stamp, raw),
        }
        async with gate, session.post(url, data=raw, headers=headers) as response:
            assert response.status == 200, response.status

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(post(session, i) for i in items))
    return len(items) / (time.perf_counter() - start)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "effects", "machine": machine(), "effects": args.effects}
    os.environ[secrets.SERVICE_ENV] = f"loyalty-desk-bench-{uuid.uuid4().hex[:8]}"
    secret = f"whsec-{uuid.uuid4().hex}"
    secrets.set_secret("webhook", secret)
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/hook"
    try:
        async with embedded() as bench:
            client = bench.client
            target = bench.target()
            await effects.change_config(
                client,
                target,
                destinations={"message": effects.destinations_of([url], [])},
                reason="bench",
            )
            run = uuid.uuid4().hex[:6]
            items = inputs(args.effects, bench.deployment, run)
            gate = asyncio.Semaphore(args.concurrency)
            cpu_before = bench.cpu_seconds()
            start = time.perf_counter()

            async def deliver(item: EffectInput) -> None:
                async with gate:
                    handle = await client.start_workflow(
                        EffectWorkflow.run,
                        item,
                        id=effect_workflow_id(item.proposal_id, item.digest),
                        task_queue=bench.task_queue,
                    )
                    state = await handle.result()
                    assert state.status == "delivered", state

            await asyncio.gather(*(deliver(i) for i in items))
            seconds = time.perf_counter() - start
            result["server_and_worker_cpu_s"] = round(bench.cpu_seconds() - cpu_before, 2)
            result["delivered"] = len(receiver.keys)
            result["requests"] = receiver.requests
            result["bad_signatures"] = receiver.bad
            result["one_request_per_effect"] = receiver.requests == len(receiver.keys) == len(items)
            result["seconds"] = round(seconds, 2)
            result["effects_per_s"] = round(args.effects / seconds, 1)
            base = await baseline(url, secret, items, args.concurrency)
            result["baseline_direct_posts_per_s"] = round(base, 1)
            result["ratio_effects_vs_direct"] = round(args.effects / seconds / base, 4)
            result["cpu_ms_per_effect"] = round(
                1000 * result["server_and_worker_cpu_s"] / args.effects, 1
            )
    finally:
        await runner.cleanup()
        secrets.delete_secret("webhook")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--effects", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    emit(asyncio.run(measure(parser.parse_args())))
