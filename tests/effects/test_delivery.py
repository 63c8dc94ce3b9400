"""Issue 13, delivery of effects, on a real dev server with real receivers on loopback
(an aiohttp webhook, an aiosmtpd server with STARTTLS and a login): an approved message
reaches the webhook and the member's mailbox once each, signed, through a receiver's
500s; a 400 is recorded as failed with the receiver's answer and `effects retry`
delivers it once the receiver is fixed; with no destination the effect waits, counted,
and configuring one delivers it."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.worker import Replayer

from activities.outbox import Outbox
from runtime import effects, secrets
from runtime.worker import sandbox_runner
from tests.agent.conftest import AgentDeployment, new_member
from tests.effects.kit import Mailbox, Webhook, approved_message, effect_of, smtp_server, webhook
from tests.kit.cli import cli
from workflows.agent_io import OutboxEntry
from workflows.effects import EffectWorkflow
from workflows.proposals import content_digest


def secret_values() -> tuple[str, str]:
    return f"whsec-{uuid.uuid4().hex}", f"smtp-pw-{uuid.uuid4().hex}"


async def configure(agents: AgentDeployment, hook: Webhook, box: Mailbox | None) -> None:
    target = agents.deployment.target
    if box is not None:
        smtp = {
            "host": box.host,
            "port": box.port,
            "sender": "desk@loyalty.test",
            "username": box.username,
            "ca_file": str(box.ca_file),
        }
        await effects.change_config(agents.client, target, smtp=smtp, reason="test smtp")
    destinations = effects.destinations_of([hook.url], ["{member_id}@members.test"] if box else [])
    await effects.change_config(
        agents.client, target, destinations={"message": destinations}, reason="test"
    )


async def test_an_approved_message_reaches_webhook_and_mailbox_once_through_two_500s(
    agents: AgentDeployment, tmp_path: Path, real_keyring: str
) -> None:
    hook_secret, smtp_password = secret_values()
    secrets.set_secret("webhook", hook_secret)
    secrets.set_secret("smtp", smtp_password)
    member = new_member()
    async with (
        webhook(hook_secret) as hook,
        smtp_server(tmp_path / "pki", "desk", smtp_password) as box,
        agents.worker(),
    ):
        await configure(agents, hook, box)
        hook.script = [500, 500]
        message = await approved_message(agents, member)
        row = await effect_of(agents, member, "delivered")

    # the webhook: three signed requests with one key and the same bytes, applied once
    digest = content_digest("message_member", message["arguments"])
    key = f"{message['id']}/{digest}"
    assert [r.answered for r in hook.requests] == [500, 500, 200]
    assert all(r.signed for r in hook.requests)
    assert set(hook.keys()) == {key}
    assert len({r.body for r in hook.requests}) == 1
    (applied,) = hook.applied.values()
    assert applied["kind"] == "message" and applied["member_id"] == member
    assert applied["arguments"]["text"] == message["arguments"]["text"]
    assert applied["decided_by"] == "tester" and applied["digest"] == digest
    # the mailbox: one email to the member, after STARTTLS and a login
    (mail,) = box.messages
    assert mail["To"] == f"{member}@members.test" and box.logins == ["desk"]
    assert message["arguments"]["text"] in mail.get_payload(decode=True).decode()
    # the record: delivered, four attempts, each destination's answer
    assert row["effect_id"] == f"effect-{message['id']}-{digest}"
    assert row["attempts"] == 4 and row["kind"] == "message"
    answers = {
        d["type"]: (d["status"], d["attempts"], d["answer"]) for d in row["deliveries"].values()
    }
    assert answers["webhook"] == ("delivered", 3, "HTTP 200: applied")
    assert answers["email"][:2] == ("delivered", 1)
    tally = await effects.counts(agents.client, agents.deployment.target, member)
    assert tally == {"pending": 0, "delivered": 1, "failed": 0, "superseded": 0}
    # the effect's history, retries and all, replays deterministically
    history = await agents.client.get_workflow_handle(row["effect_id"]).fetch_history()
    replayer = Replayer(workflows=[EffectWorkflow], workflow_runner=sandbox_runner())
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure


async def test_a_400_is_failed_with_its_answer_and_retry_delivers_it_once_fixed(
    agents: AgentDeployment, real_keyring: str
) -> None:
    hook_secret, _ = secret_values()
    secrets.set_secret("webhook", hook_secret)
    member = new_member()
    async with webhook(hook_secret) as hook, agents.worker():
        await configure(agents, hook, None)
        hook.script, hook.script_text = [400], "unknown member"
        await approved_message(agents, member)
        failed = await effect_of(agents, member, "failed")
        assert failed["answer"] == "HTTP 400: unknown member"
        assert len(hook.requests) == 1  # a 400 is not retried
        # the CLI shows the failure and the receiver's answer
        code, out, err = await cli(
            agents.deployment, "effects", "list", "--status", "failed", "--json"
        )
        assert code == 0, err
        (listed,) = [r for r in json.loads(out)["effects"] if r["member_id"] == member]
        assert listed["answer"] == "HTTP 400: unknown member"
        # the receiver is fixed; an operator retries it
        code, out, err = await cli(agents.deployment, "effects", "retry", failed["effect_id"])
        assert code == 0, err
        row = await effect_of(agents, member, "delivered")
        assert row["attempts"] == 2 and len(hook.applied) == 1
        code, _, err = await cli(agents.deployment, "effects", "retry", failed["effect_id"])
        assert code == 1 and "was delivered; nothing to retry" in err


async def test_with_no_destination_an_effect_waits_counted_until_one_is_configured(
    agents: AgentDeployment, real_keyring: str
) -> None:
    hook_secret, _ = secret_values()
    secrets.set_secret("webhook", hook_secret)
    member = new_member()
    async with webhook(hook_secret) as hook, agents.worker():
        await approved_message(agents, member)
        waiting = await effect_of(agents, member, "pending")
        assert "no destination is configured for message" in waiting["detail"]
        tally = await effects.counts(agents.client, agents.deployment.target, member)
        assert tally == {"pending": 1, "delivered": 0, "failed": 0, "superseded": 0}
        assert hook.requests == []
        await configure(agents, hook, None)
        await effect_of(agents, member, "delivered")
        assert len(hook.applied) == 1 and len(hook.requests) == 1


@pytest.mark.parametrize(
    ("destinations", "reason"),
    [
        ({"message": [{"type": "webhook", "url": "http://192.0.2.1/hook"}]}, "plain http"),
        ({"fraud_case": [{"type": "email", "to": "x@y.test"}]}, "for messages only"),
        ({"refund": []}, "unknown effect kind"),
        ({"message": [{"type": "email", "to": "{member_id}@m.test"}]}, "SMTP server first"),
        ({"message": [{"type": "webhook", "url": "https://u:p@h.test/"}]}, "no credentials"),
    ],
)
async def test_bad_destinations_are_refused_in_one_line_and_change_nothing(
    agents: AgentDeployment, destinations: dict[str, Any], reason: str
) -> None:
    target = agents.deployment.target
    with pytest.raises(effects.EffectsError) as refused:
        await effects.change_config(agents.client, target, destinations=destinations, reason="x")
    assert reason in str(refused.value) and "\n" not in str(refused.value)
    assert (await effects.config(agents.client, target)).destinations == {}


async def test_an_effect_handed_over_again_after_delivery_is_not_delivered_again(
    agents: AgentDeployment, real_keyring: str
) -> None:
    """What a reset that replays the approval, or a retried hand-over, does: the same
    proposal and content again, after the effect was delivered and its workflow closed."""
    hook_secret, _ = secret_values()
    secrets.set_secret("webhook", hook_secret)
    member = new_member()
    target = agents.deployment.target
    async with webhook(hook_secret) as hook, agents.worker():
        await configure(agents, hook, None)
        message = await approved_message(agents, member)
        row = await effect_of(agents, member, "delivered")
        entry = OutboxEntry(
            proposal_id=message["id"],
            member_id=member,
            kind="message",
            payload={"action": "message_member", "arguments": dict(message["arguments"])},
            decided_by="tester",
            decided_at=row["decided_at"],
        )
        outbox = Outbox(agents.client, target.deployment, target.task_queue)
        for _ in range(2):
            receipt = await outbox.put(entry)
            assert not receipt.inserted and receipt.effect_id == row["effect_id"]
        await asyncio.sleep(3)  # time enough for a second delivery, were there one
        assert len(hook.requests) == 1
        assert len(await agents.effects(message["id"])) == 1


async def test_an_effect_whose_proposal_now_reads_differently_is_never_delivered(
    agents: AgentDeployment, real_keyring: str
) -> None:
    """After a reset the agent may propose something else under the same proposal id.
    An effect approved for the old content (here: handed over with other arguments than
    the member now holds) is superseded, never delivered; the current one is."""
    hook_secret, _ = secret_values()
    secrets.set_secret("webhook", hook_secret)
    member = new_member()
    target = agents.deployment.target
    async with webhook(hook_secret) as hook, agents.worker():
        message = await approved_message(agents, member)
        current = await effect_of(agents, member, "pending")  # no destination yet
        old = OutboxEntry(
            proposal_id=message["id"],
            member_id=member,
            kind="message",
            payload={"action": "message_member", "arguments": {"text": "the old wording"}},
            decided_by="tester",
            decided_at=current["decided_at"],
        )
        receipt = await Outbox(agents.client, target.deployment, target.task_queue).put(old)
        assert receipt.inserted and receipt.effect_id != current["effect_id"]
        superseded = await effect_of(agents, member, "superseded")
        assert superseded["effect_id"] == receipt.effect_id
        assert "now reads differently" in superseded["detail"]
        await configure(agents, hook, None)
        await effect_of(agents, member, "delivered")
        (applied,) = hook.applied.values()
        assert applied["arguments"] == message["arguments"]  # never "the old wording"
        assert len(hook.requests) == 1
        code, _, err = await cli(agents.deployment, "effects", "retry", receipt.effect_id)
        assert code == 1 and "superseded" in err
