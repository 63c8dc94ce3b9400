"""Chaos for the agent's model provider (issue 6): a local OpenAI-compatible server that
answers 429s, 500s and too late. Retries stay bounded by the app's own retry policy,
the member's circuit breaker opens, events keep counting, and once the provider
recovers the agent picks the trigger up again. Real keyring, real dev server, real
HTTP; nothing mocked but the model's answers."""

from __future__ import annotations

from datetime import timedelta

from temporalio.openai_agents import ModelActivityParameters

from runtime import secrets
from runtime.worker import MODEL_RETRY
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, sentinel, ticket, trip
from tests.agent.fake_openai import FakeOpenAI

ATTEMPTS = MODEL_RETRY.maximum_attempts  # per model call, as the app runs it
# the app's retry policy; a shorter wait per attempt than the app's 60 s so a test
# "timeout" (the server answering after 5 s) costs seconds
MODEL_ACTIVITY = ModelActivityParameters(
    start_to_close_timeout=timedelta(seconds=2), retry_policy=MODEL_RETRY
)


async def test_429s_500s_and_timeouts_open_the_breaker_events_flow_and_it_recovers(
    agents: AgentDeployment, fake_openai: FakeOpenAI, real_keyring: str
) -> None:
    secrets.set_secret("openai", sentinel(), endpoint=fake_openai.base_url)
    await agents.configure(
        model={"provider": "openai", "model": "local-test-model", "base_url": fake_openai.base_url}
    )
    # two agent runs' worth of trouble, every kind in each run
    script = ["429", "500", "timeout", "500", "timeout", "429"]
    fake_openai.failures = list(script)
    member = new_member()
    async with agents.worker(model_activity=MODEL_ACTIVITY):
        await agents.configure(agent={"breaker_failures": 2, "breaker_cooldown_seconds": 10})
        # the ticket wakes the agent; the trips count while its runs fail
        state = await agents.feed(
            member, [ticket(member, 1, CHARGE), *(trip(member, n, 2_000) for n in range(1, 3))]
        )
        assert (state["events_processed"], state["points"]) == (3, 40)
        state = await agents.wait_for(
            member, lambda s: s["agent"]["breaker"]["state"] == "open", timeout=60
        )
        agent = state["agent"]
        assert (agent["runs_failed"], agent["breaker"]["consecutive_failures"]) == (2, 2)
        assert agent["status"] == "paused (breaker)" and agent["last_error"]
        # bounded: each failed run made exactly the policy's attempts, no more
        assert [r["failure"] for r in fake_openai.seen] == script
        assert len(fake_openai.seen) == 2 * ATTEMPTS
        assert state["costs"]["model_calls"] == 0 and state["proposals"] == []

        # events keep flowing while the breaker is open, and no model call is made
        opened_at = agent["breaker"]["opened_at"]
        state = await agents.feed(member, [trip(member, n, 3_000, day=2) for n in range(3, 6)])
        assert (state["events_processed"], state["points"]) == (6, 130)
        state = await agents.state(member)
        if state["agent"]["breaker"]["opened_at"] == opened_at:  # still the same open spell
            assert len(fake_openai.seen) == 2 * ATTEMPTS

        # the provider recovers (the failure script is used up): after the cool-down one
        # trial run succeeds, closes the breaker and makes the ticket's proposal
        state = await agents.wait_for(
            member,
            lambda s: bool(s["proposals"]) and s["agent"]["running"] is None,
            timeout=60,
        )
    (proposal,) = state["proposals"]
    assert proposal["trigger"]["key"] == f"{member}-k1" and proposal["status"] == "pending"
    agent = state["agent"]
    assert agent["breaker"]["state"] == "closed" and agent["breaker"]["consecutive_failures"] == 0
    assert (agent["runs"], agent["runs_failed"], agent["triggers_dropped"]) == (3, 2, 0)
    assert state["costs"]["model_calls"] == 1  # failed attempts cost nothing
    assert len(fake_openai.seen) == 2 * ATTEMPTS + 1
    assert fake_openai.seen[-1]["failure"] is None
    assert (state["events_processed"], state["points"]) == (6, 130)
