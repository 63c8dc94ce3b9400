"""Issue 9: the OpenAI key goes only to the endpoint it was stored for, over https unless
that endpoint is this machine. settings.json is an ordinary file: pointing its base_url
at another server must not hand that server the key from the OS keyring.

Real keyring, real worker and server, fake OpenAI-compatible servers that record every
request: the one the settings point to must see none (no request, no Authorization).
"""

from __future__ import annotations

import socket

import keyring
import pytest

from activities.model_endpoint import endpoint_origin, endpoint_problem
from runtime import secrets
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, sentinel, ticket
from tests.agent.fake_openai import FakeOpenAI, serve
from tests.kit.cli import cli


def lan_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


async def agent_error(agents: AgentDeployment, base_url: str) -> str:
    """Configure the endpoint, wake the agent with a ticket; the run's error."""
    await agents.configure(
        model={"provider": "openai", "model": "local-test-model", "base_url": base_url}
    )
    member = new_member()
    async with agents.worker():
        await agents.configure(agent={"breaker_failures": 1, "breaker_cooldown_seconds": 3600})
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        state = await agents.wait_for(member, lambda s: s["agent"]["breaker"]["state"] == "open")
    assert state["events_processed"] == 1 and state["proposals"] == []
    return str(state["agent"]["last_error"])


async def test_a_key_stored_for_one_endpoint_is_not_sent_to_another(
    agents: AgentDeployment, fake_openai: FakeOpenAI, real_keyring: str
) -> None:
    key = sentinel()
    secrets.set_secret("openai", key, endpoint=fake_openai.base_url)
    with serve() as other:  # another server on this machine: another port, another origin
        error = await agent_error(agents, other.base_url)
    assert other.seen == [] and fake_openai.seen == []
    assert f"stored for {endpoint_origin(fake_openai.base_url)}" in error
    assert endpoint_origin(other.base_url) in error and key not in error


async def test_a_key_stored_before_binding_goes_to_openai_only(
    agents: AgentDeployment, fake_openai: FakeOpenAI, real_keyring: str
) -> None:
    keyring.set_password(real_keyring, "openai", sentinel())  # as older versions stored it
    error = await agent_error(agents, fake_openai.base_url)
    assert fake_openai.seen == []
    assert "stored for https://api.openai.com" in error


async def test_never_over_plain_http_off_this_machine(
    agents: AgentDeployment, real_keyring: str
) -> None:
    lan = lan_address()
    host = lan or "192.0.2.1"  # without a network, an address nobody answers
    with serve(lan) if lan else serve() as fake:
        url = f"http://{host}:{fake.base_url.rsplit(':', 1)[1]}"
        # the CLI refuses to store a key for it, in one line
        code, _, err = await cli(
            agents.deployment, "secrets", "set", "openai", "--for", url, stdin=sentinel() + "\n"
        )
        assert code == 1 and err.count("\n") == 1 and "plain http" in err, err
        assert keyring.get_password(real_keyring, "openai") is None
        # and a binding written by hand does not make the worker send it either
        keyring.set_password(real_keyring, "openai", sentinel())
        keyring.set_password(real_keyring, "openai.origin", endpoint_origin(url))
        error = await agent_error(agents, url)
    assert fake.seen == []
    assert "plain http" in error


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (None, True),
        ("https://api.openai.com/v1", True),
        ("https://llm.example.com:8443/v1", True),
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.1.2.3:8000/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://llm.example.com/v1", False),
        ("http://192.0.2.2:8000/v1", False),
        ("http://127.0.0.1.example.com/v1", False),
        ("http://localhost@evil.example.com/v1", False),
        ("ftp://127.0.0.1/v1", False),
        ("not a url", False),
    ],
)
def test_which_endpoints_may_get_the_key(url: str | None, ok: bool) -> None:
    assert (endpoint_problem(url) is None) == ok


def test_one_endpoint_is_one_origin() -> None:
    assert endpoint_origin(None) == endpoint_origin("https://API.openai.com:443/v1/")
    assert endpoint_origin("https://api.openai.com@evil.example.com/v1") != endpoint_origin(None)
    assert endpoint_origin("http://127.0.0.1:8000/v1") != endpoint_origin("http://127.0.0.1:8001")
    assert endpoint_origin("http://localhost:8000") != endpoint_origin("https://localhost:8000")
