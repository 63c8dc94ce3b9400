"""Issue 13, delivery under failure, as an operator runs it: `loyalty-desk server` (the
embedded server in its private network namespace), `worker` processes and the CLI,
with a webhook and an SMTP server on the machine's loopback started by this test.

The worker delivering a message is SIGKILLed while the receiver holds its request; the
receiver then answers 500 twice. Another worker (another data dir) takes over and the
message is applied once by the webhook (every request signed, one Idempotency-Key, the
same bytes) and mailed once. Then two workers on one task queue, with separate data
dirs, deliver several effects: one request per effect, and either data dir's CLI lists
every effect delivered. Workers run outside the server's namespace, so they reach the
machine's loopback: the receivers here are what proves it."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from runtime.server import find_running_server
from tests.agent.conftest import CHARGE, ticket
from tests.chaos.cluster import free_port
from tests.chaos.kit import run, sigkill, spawn, start_worker, stop, stop_all
from tests.conftest import eventually
from tests.effects.kit import smtp_server, webhook


async def test_a_killed_worker_and_a_failing_receiver_still_deliver_each_effect_once(
    tmp_path: Path, real_keyring: str
) -> None:
    env = {"LOYALTY_DESK_KEYRING_SERVICE": real_keyring}
    here, there = tmp_path / "desk", tmp_path / "other-machine"
    logs = tmp_path / "logs"
    hook_secret, smtp_password = f"whsec-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    processes: list[asyncio.subprocess.Process] = []
    address = ""

    async def cli(*args: str, data_dir: Path = here, stdin: str | None = None) -> Any:
        options = ["--data-dir", str(data_dir)]
        if data_dir != here:
            options += ["--address", address]
        return await run(*args, *options, env=env, stdin=stdin)

    async def worker(data_dir: Path, name: str) -> asyncio.subprocess.Process:
        options = ["--data-dir", str(data_dir)]
        if data_dir != here:
            options += ["--address", address]
        proc = await start_worker(*options, log=logs / f"{name}.log", env=env)
        processes.append(proc)
        return proc

    async def approve_message(member: str) -> dict[str, Any]:
        await cli("feed", "-", "--wait", stdin=json.dumps(ticket(member, 1, CHARGE)) + "\n")

        async def proposal() -> dict[str, Any] | None:
            listed = await cli("approvals", "list")
            return next(
                (p for p in listed if p["member_id"] == member and p["action"] == "message_member"),
                None,
            )

        found: dict[str, Any] = await eventually(proposal, timeout=60, interval=0.5)
        digest = ("--digest", found["digest"])  # as `approvals list` showed it
        await cli("approvals", "approve", found["id"], *digest, "--reason", "send it")
        return found

    async def delivered(data_dir: Path) -> list[dict[str, Any]]:
        listed = await cli("effects", "list", "--status", "delivered", data_dir=data_dir)
        return list(listed["effects"])

    server = await spawn(
        "server", "--headless", "--port", str(free_port()), "--data-dir", str(here),
        log=logs / "server.log",
    )  # fmt: skip
    processes.append(server)
    try:
        info = await eventually(lambda: find_running_server(here), timeout=60)
        address = info["address"]
        async with (
            webhook(hook_secret) as hook,
            smtp_server(tmp_path / "pki", "desk", smtp_password) as box,
        ):
            # no worker yet: a change of destinations says so, in one line
            refused = await spawn(
                "effects", "set", "message", "--webhook", hook.url, "--reason", "x",
                "--data-dir", str(here), env=env, log=logs / "refused.log",
            )  # fmt: skip
            assert await refused.wait() == 1
            assert "no worker polls" in (logs / "refused.log").read_text()
            first = await worker(here, "worker-1")
            await cli("secrets", "set", "webhook", stdin=hook_secret + "\n")
            await cli("secrets", "set", "smtp", stdin=smtp_password + "\n")
            await cli(
                "effects", "smtp", "--host", box.host, "--port", str(box.port),
                "--sender", "desk@loyalty.test", "--username", "desk",
                "--ca-file", str(box.ca_file), "--reason", "the test's mail server",
            )  # fmt: skip
            await cli(
                "effects", "set", "message", "--webhook", hook.url,
                "--email", "{member_id}@members.test", "--reason", "the test's receivers",
            )  # fmt: skip

            # 1. the worker is killed while the receiver holds its request
            hook.hold = asyncio.Event()
            member = f"fx-{uuid.uuid4().hex[:8]}"
            message = await approve_message(member)
            await asyncio.wait_for(hook.arrived.wait(), 60)
            await sigkill(first)
            hook.script = [503, 500, 500]  # the held request's answer goes nowhere
            hook.hold.set()
            await worker(there, "worker-2")
            (row,) = await eventually(lambda: delivered(there), timeout=120, interval=0.5)
            assert row["member_id"] == member and row["proposal_id"] == message["id"]
            assert [r.answered for r in hook.requests] == [503, 500, 500, 200]
            assert all(r.signed for r in hook.requests)
            assert len(set(hook.keys())) == 1 and len({r.body for r in hook.requests}) == 1
            (applied,) = hook.applied.values()
            assert applied["arguments"] == message["arguments"]
            webhook_record = next(d for d in row["deliveries"].values() if d["type"] == "webhook")
            assert webhook_record["attempts"] == 4 and "no answer" not in webhook_record["answer"]
            (mail,) = box.messages
            assert mail["To"] == f"{member}@members.test"
            assert message["arguments"]["text"] in mail.get_payload(decode=True).decode()

            # 2. two workers on one task queue, separate data dirs: one request per effect
            await worker(here, "worker-3")
            members = [f"fy-{uuid.uuid4().hex[:8]}" for _ in range(3)]
            await asyncio.gather(*(approve_message(name) for name in members))

            async def all_delivered(data_dir: Path) -> list[dict[str, Any]] | None:
                rows = await delivered(data_dir)
                return rows if len(rows) == 4 else None

            for data_dir in (here, there):  # the same record from either machine
                rows = await eventually(lambda d=data_dir: all_delivered(d), timeout=120)
                assert {r["member_id"] for r in rows} == {member, *members}
            assert len(hook.applied) == 4 and len(box.messages) == 4
            later = hook.requests[4:]
            assert len(later) == 3 and len({r.key for r in later}) == 3
            assert all(r.answered == 200 and r.signed for r in later)
            counts = (await cli("effects", "list", data_dir=there))["counts"]
            assert counts == {"pending": 0, "delivered": 4, "failed": 0, "superseded": 0}
    finally:
        await stop_all(processes[1:])  # the workers, then the server they use
        await stop(server)
