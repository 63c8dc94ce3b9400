"""`loyalty-desk approvals | costs | secrets | model` as separate processes, end to end."""

from __future__ import annotations

import json
import os
import pwd
import uuid
from typing import Any

import keyring
import pytest

from runtime import secrets
from tests.agent.conftest import (
    CHARGE,
    INJECTION,
    AgentDeployment,
    files_containing,
    new_member,
    ticket,
    trip,
)
from tests.kit.cli import cli


async def ok_json(agents: AgentDeployment, *args: str) -> Any:
    code, out, err = await cli(agents.deployment, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_approvals_list_approve_reject_decide_and_costs(agents: AgentDeployment) -> None:
    ann, ben, cy = new_member(), new_member(), new_member()
    async with agents.worker():
        await agents.feed(ann, [ticket(ann, 1, CHARGE)])
        await agents.feed(ben, [trip(ben, 1, 100_000), ticket(ben, 1, CHARGE)])  # Gold
        await agents.feed(cy, [ticket(cy, 1, INJECTION)])
        for member in (ann, ben, cy):
            await agents.proposals_made(member, 2)

        pending = await ok_json(agents, "approvals", "list")
        assert len(pending) == 6 and {p["status"] for p in pending} == {"pending"}
        grants = await ok_json(agents, "approvals", "list", "--action", "grant_points")
        assert {(p["member_id"], p["arguments"]["points"]) for p in grants} == {
            (ann, 100),
            (ben, 150),
        }
        ann_grant = next(p["id"] for p in grants if p["member_id"] == ann)
        # the digest `approvals list` shows binds the decision to what was read there
        shown = next(p for p in grants if p["member_id"] == ann)
        digest = ("--digest", shown["digest"])
        listed = await cli(agents.deployment, "approvals", "list", "--member", ann)
        assert shown["digest"] in listed[1]
        code, _, err = await cli(
            agents.deployment, "approvals", "approve", ann_grant, "--reason", "blind"
        )
        assert code == 2 and "--digest" in err  # no blind approval from the CLI
        other = ("--digest", "0" * 20)
        code, _, err = await cli(
            agents.deployment, "approvals", "approve", ann_grant, *other, "--reason", "x"
        )
        assert code == 1 and "is not what was shown" in err

        result = await ok_json(
            agents, "approvals", "approve", ann_grant, *digest, "--reason", "checked"
        )
        assert result["applied"] and "100 points granted" in result["message"]
        code, out, err = await cli(
            agents.deployment, "approvals", "approve", ann_grant, *digest, "--reason", "again"
        )
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and "already approved by" in err
        code, _, err = await cli(
            agents.deployment, "approvals", "approve", f"{ann}:nope:0", *digest, "--reason", "x"
        )
        assert code == 1 and "unknown proposal" in err
        code, _, err = await cli(agents.deployment, "approvals", "reject", ann_grant, *digest)
        assert code == 2 and "--reason" in err  # a reason is required

        flagged = next(p for p in pending if p["action"] == "flag_fraud")
        await ok_json(
            agents,
            "approvals",
            "reject",
            flagged["id"],
            "--digest",
            flagged["digest"],
            "--reason",
            "false alarm",
        )

        dry = await ok_json(
            agents,
            "approvals",
            "decide",
            "--policy",
            "action=message_member",
            "--approve",
            "--reason",
            "bulk",
            "--dry-run",
        )
        assert dry["matched"] == 3 and await agents.effects() == []
        bulk = await ok_json(
            agents,
            "approvals",
            "decide",
            "--policy",
            "action=message_member",
            "--approve",
            "--reason",
            "standard replies are fine",
        )
        assert (bulk["matched"], bulk["decided"], bulk["failed"]) == (3, 3, [])
        # no grant of at most 120 points is left pending (ben's is 150)
        none = await ok_json(
            agents,
            "approvals",
            "decide",
            "--policy",
            "action=grant_points,max_points=120",
            "--approve",
            "--reason",
            "small ones",
        )
        assert none["matched"] == 0
        code, _, err = await cli(
            agents.deployment,
            "approvals",
            "decide",
            "--policy",
            "max_points=lots",
            "--approve",
            "--reason",
            "x",
        )
        assert code == 1 and "whole number" in err

        async def delivered() -> bool:
            return len(await agents.effects()) == 3

        from tests.conftest import eventually

        await eventually(delivered, timeout=15)
        approved = await ok_json(agents, "approvals", "list", "--status", "approved")
        assert len(approved) == 4
        assert all(p["decided_by"] == pwd.getpwuid(os.getuid()).pw_name for p in approved)
        bulk_decided = [p for p in approved if p["action"] == "message_member"]
        assert {p["policy"] for p in bulk_decided} == {"action=message_member"}
        left = await ok_json(agents, "approvals", "list")
        assert [p["member_id"] for p in left] == [ben]

        costs = await ok_json(agents, "costs")
        assert costs["members_with_agent_use"] == 3
        assert costs["totals"]["model_calls"] == 3 and costs["totals"]["tokens"] > 0
        by_action = costs["by_action"]
        assert by_action["message_member"]["approved"] == 3
        assert (
            by_action["grant_points"]["proposals"] == 2
            and by_action["grant_points"]["approved"] == 1
        )
        assert by_action["flag_fraud"]["rejected"] == 1
        code, out, _ = await cli(agents.deployment, "costs")
        assert code == 0 and "3 model calls" in out
    kinds = sorted(r["kind"] for r in await agents.effects())
    assert kinds == ["message", "message", "message"]


async def test_secrets_in_the_os_keyring(agents: AgentDeployment) -> None:
    if not secrets.usable(keyring.get_keyring()):
        pytest.fail("no real keyring backend: run under `python -m runtime.testenv pytest ...`")
    service = f"loyalty-desk-test-{uuid.uuid4().hex[:8]}"
    env = {secrets.SERVICE_ENV: service}
    key = f"sk-cli-SENTINEL-{uuid.uuid4().hex}"
    try:
        code, out, err = await cli(agents.deployment, "secrets", "status", "--json", env=env)
        status = json.loads(out)
        assert code == 0 and status["usable"] and not status["stored"]
        code, out, err = await cli(
            agents.deployment, "secrets", "set", "openai", "--json", stdin=key + "\n", env=env
        )
        assert code == 0, err
        stored = json.loads(out)
        assert stored["stored"] and "fail" not in stored["backend"].lower()
        assert key not in out and key not in err
        assert keyring.get_password(service, "openai") == key
        code, out, _ = await cli(agents.deployment, "secrets", "status", env=env)
        assert code == 0 and "is stored in" in out and stored["backend"] in out and key not in out
        code, _, err = await cli(
            agents.deployment, "secrets", "set", "openai", stdin="  \n", env=env
        )
        assert code == 1 and "empty" in err
    finally:
        for name in ("openai", "openai" + secrets.ORIGIN_SUFFIX):
            try:
                keyring.delete_password(service, name)
            except Exception:
                pass
    assert files_containing(agents.data_dir, key) == []


async def test_no_keyring_backend_is_a_clear_message_and_the_offline_model_stays(
    agents: AgentDeployment,
) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    code, out, err = await cli(
        agents.deployment, "secrets", "set", "openai", stdin="sk-x\n", env=env
    )
    assert code == 1 and err.count("\n") == 1
    assert "no OS keyring backend" in err and "offline model" in err
    code, out, _ = await cli(agents.deployment, "secrets", "status", "--json", env=env)
    status = json.loads(out)
    assert (
        code == 0 and not status["usable"] and status["backend"] == "keyring.backends.fail.Keyring"
    )
    shown = await ok_json(agents, "model", "show")
    assert shown["label"] == "offline rules model"


async def test_model_settings_hold_no_secret(agents: AgentDeployment) -> None:
    shown = await ok_json(
        agents,
        "model",
        "set",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--input-usd-per-mtok",
        "0.15",
    )
    assert shown["label"] == "gpt-4o-mini (127.0.0.1:9)" and shown["api"] == "chat_completions"
    saved = json.loads((agents.data_dir / "settings.json").read_text())
    assert saved == {
        "model": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": "http://127.0.0.1:9/v1",
            "input_usd_per_mtok": 0.15,
        }
    }
    back = await ok_json(agents, "model", "set", "--provider", "offline")
    assert back["label"] == "offline rules model"
