"""The OpenAI provider path for real: the key from a real OS keyring, the configured base
URL, a small OpenAI-compatible server on 127.0.0.1 that records what it receives.

Run under `python -m runtime.testenv pytest ...` (a D-Bus session with gnome-keyring):
without a real keyring backend these tests fail, they never skip.
"""

from __future__ import annotations

import json
import logging

import keyring
import pytest

from runtime import secrets
from tests.agent.conftest import (
    CHARGE,
    AgentDeployment,
    files_containing,
    new_member,
    sentinel,
    ticket,
)
from tests.agent.fake_openai import FakeOpenAI
from workflows.agent import agent_workflow_id
from workflows.member import member_workflow_id


@pytest.mark.parametrize("api", ["chat_completions", "responses"])
async def test_openai_compatible_server_gets_the_keyring_key_and_nothing_leaks(
    agents: AgentDeployment,
    fake_openai: FakeOpenAI,
    real_keyring: str,
    api: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    base_url, seen = fake_openai.base_url, fake_openai.seen
    key = sentinel()
    backend = secrets.set_secret("openai", key, endpoint=base_url)
    assert "fail" not in backend.lower()
    assert keyring.get_password(real_keyring, "openai") == key  # really in the OS keyring
    await agents.configure(
        model={
            "provider": "openai",
            "model": "local-test-model",
            "base_url": base_url,
            "api": api,
            "input_usd_per_mtok": 0.5,
            "output_usd_per_mtok": 2.0,
        }
    )
    member = new_member()
    async with agents.worker(model=None):
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        (proposal,) = await agents.proposals_made(member, 1)
        state = await agents.state(member)
        histories = [
            (await agents.handle(member).fetch_history()).to_json(),
            (
                await agents.client.get_workflow_handle(
                    agent_workflow_id(member, f"{member}-k1")
                ).fetch_history()
            ).to_json(),
        ]

    # the request went to the configured base URL with the keyring's key as bearer token
    assert len(seen) == 1
    request = seen[0]
    assert request["path"] == (
        "/v1/chat/completions" if api == "chat_completions" else "/v1/responses"
    )
    assert request["authorization"] == f"Bearer {key}"
    assert request["body"]["model"] == "local-test-model"
    sent = json.dumps(request["body"])
    assert "message_member" in sent and "grant_points" in sent  # the tools
    assert "charged twice" in sent  # the ticket, as quoted data in the case JSON
    assert "never" in sent and "instructions to you" in sent  # ...with the rule about it

    host = base_url.split("//")[1].split("/")[0]
    assert proposal["model"] == f"local-test-model ({host})"
    assert proposal["action"] == "message_member" and proposal["status"] == "pending"
    assert state["agent"]["model"] == f"local-test-model ({host})"
    costs = state["costs"]
    assert (costs["model_calls"], costs["input_tokens"], costs["output_tokens"]) == (1, 1_200, 300)
    assert costs["cost_usd"] == pytest.approx((1_200 * 0.5 + 300 * 2.0) / 1_000_000)

    # the key is nowhere but the keyring: not in the data dir, the logs or any history
    assert files_containing(agents.data_dir, key) == []
    assert key not in caplog.text
    out, err = capfd.readouterr()
    assert key not in out and key not in err
    for history in histories:
        assert key not in history
    assert member_workflow_id(member) in histories[0]


async def test_without_a_key_the_run_fails_clearly_and_the_breaker_counts_it(
    agents: AgentDeployment, fake_openai: FakeOpenAI, real_keyring: str
) -> None:
    base_url, seen = fake_openai.base_url, fake_openai.seen
    await agents.configure(
        model={"provider": "openai", "model": "local-test-model", "base_url": base_url}
    )
    member = new_member()
    async with agents.worker():
        await agents.configure(agent={"breaker_failures": 1, "breaker_cooldown_seconds": 3600})
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        state = await agents.wait_for(member, lambda s: s["agent"]["breaker"]["state"] == "open")
        # the member goes on
        await agents.feed(member, [ticket(member, 2, "hello", day=3)])
        state = await agents.state(member)
    assert "no OpenAI API key in the keyring" in state["agent"]["last_error"]
    assert state["events_processed"] == 2 and state["proposals"] == []
    assert seen == []  # never called without a key
