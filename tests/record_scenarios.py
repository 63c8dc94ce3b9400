"""Record the histories a plain member run lacks, from the current build, for the replay
tests (tests/workflows/test_replay.py):

    python -m tests.record_scenarios BUILD_ID

- `member-BUILD-chain.json`: one member whose chain continued as new several times, with
  support tickets whose agent proposals were approved and rejected (`decide`), a grant
  approved by policy (`auto_approve_max_points`), a manual `adjust` (and its retry),
  redemptions (one retried, one cancelled: from 0.4.0; one cancelled by a
  `redemption_cancelled` event and an approved goodwill reward: from 0.4.1), a refund, a
  resent event and a malformed one; every run's history, oldest first, and the final
  state.
- `rollback-BUILD.json`: a RollbackWorkflow run that repaired members after a drill build,
  and for each repaired member its chain including the reset run (`histories`), the runs
  the reset replaced (`damaged_histories`) and its final state.
- `audit-BUILD.json`: the AuditWorkflow's history with the entries the releases, the
  rollback and a few operator actions recorded.

Everything runs on a real dev server with the app's worker (offline model, the default
provider); run it next to `python -m tests.record_fixture BUILD_ID` for every released build.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from recovery.runs import chain_histories
from runtime import approvals, audit, effects, guardrails, previews, releases, secrets
from runtime.connect import Target
from runtime.feed import send_member, wait_applied
from runtime.worker import WorkerSettings, announce, build_worker
from tests.conftest import eventually, temporal_binary
from tests.effects.kit import webhook
from tests.kit.events import member_events
from tests.memberkit import start_member, state_when
from workflows import search_attributes as sa
from workflows.audit import AUDIT_WORKFLOW_ID
from workflows.drill import drill_build_id
from workflows.effects import effect_workflow_id
from workflows.effects_config import effects_config_workflow_id
from workflows.guardrails import guardrails_workflow_id
from workflows.member import SIGNAL_EVENTS, Adjustment, MemberWorkflow, member_workflow_id
from workflows.member_messages import CancelRedemption, RedeemRequest
from workflows.proposals import AUTO_APPROVE_POLICY
from workflows.rollback_pages import page_id

FIXTURES = Path(__file__).parent / "fixtures" / "histories"
ACTOR = "fixture-recorder"
CHARGE = "I was charged twice for my ride on Tuesday."
STATUS = "I am Gold with another airline, can you do a status match?"
BAD_RIDE = "The driver was rude and the car was dirty."
BUG = "double-points"


def as_json(history: WorkflowHistory) -> Any:
    return json.loads(history.to_json())


def write(name: str, data: dict[str, Any]) -> Path:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / name
    path.write_text(json.dumps(data, indent=None, separators=(",", ":")))
    return path


@dataclasses.dataclass
class Recorder:
    client: Client
    target: Target
    build_id: str

    def settings(self, drill: str | None = None) -> WorkerSettings:
        return WorkerSettings(
            self.target.task_queue,
            self.target.deployment,
            self.build_id,
            drill=drill,
            data_dir=self.target.data_dir,
        )

    @asynccontextmanager
    async def worker(self, drill: str | None = None) -> AsyncIterator[None]:
        """The app's worker for this build (a drill of it with `drill`); it reads the
        agent settings in the data dir as it starts."""
        settings = self.settings(drill)
        async with build_worker(self.client, settings):
            await announce(self.client, settings)
            yield

    async def state(self, member: str) -> dict[str, Any]:
        handle = self.client.get_workflow_handle(member_workflow_id(member))
        result: dict[str, Any] = await handle.query(MemberWorkflow.state)
        return result

    async def wait_for(
        self, member: str, check: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        return await state_when(self.client, member, check, timeout)

    async def idle(self, member: str) -> dict[str, Any]:
        """The member's state once its agent has nothing running or queued."""
        try:
            return await self.wait_for(
                member, lambda s: s["agent"]["running"] is None and not s["agent"]["queued"]
            )
        except AssertionError:
            agent = (await self.state(member))["agent"]
            raise AssertionError(f"the agent of {member} is not idle: {agent}") from None

    async def feed(self, member: str, events: list[Any], *, bulk: bool = False) -> None:
        await send_member(self.client, self.target, member, events, bulk=bulk)
        await wait_applied(self.client, [member])

    async def agent_run(self, workflow_id: str, run_id: str) -> WorkflowHistory:
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        await handle.result()
        return await handle.fetch_history()

    async def chain(self, member: str) -> tuple[str, list[WorkflowHistory]]:
        workflow_id = member_workflow_id(member)
        run_id = (await self.client.get_workflow_handle(workflow_id).describe()).run_id
        return run_id, await chain_histories(self.client, workflow_id, run_id=run_id)


def agent_children(histories: list[WorkflowHistory]) -> list[tuple[str, str]]:
    """(workflow id, run id) of every agent run the member started, in order."""
    found = []
    for history in histories:
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                execution = event.child_workflow_execution_started_event_attributes
                found.append(
                    (execution.workflow_execution.workflow_id, execution.workflow_execution.run_id)
                )
    return found


def trip(member: str, n: int) -> dict[str, Any]:
    """Trips two hours apart (never "unusual activity"), eight a day from March 1st."""
    return {
        "type": "trip_completed",
        "event_id": f"{member}-t{n}",
        "member_id": member,
        "occurred_at": f"2026-03-{1 + n // 8:02d}T{6 + (n % 8) * 2:02d}:00:00Z",
        "fare_cents": 1_800 + 97 * n,
    }


def ticket(member: str, n: int, text: str, day: int) -> dict[str, Any]:
    return {
        "type": "support_ticket",
        "event_id": f"{member}-k{n}",
        "member_id": member,
        "occurred_at": f"2026-03-{day:02d}T23:{n:02d}:00Z",
        "text": text,
    }


async def proposals_for(rec: Recorder, member: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Send a ticket and wait for the proposals the agent made for it."""
    await rec.feed(member, [event])
    prefix = f"{member}:{event['event_id']}:"

    def answered(state: dict[str, Any]) -> bool:
        made = any(p["id"].startswith(prefix) for p in state["proposals"])
        return made and state["agent"]["running"] is None

    state = await rec.wait_for(member, answered)
    return [p for p in state["proposals"] if p["id"].startswith(prefix)]


async def decide(rec: Recorder, proposal: dict[str, Any], approve: bool, reason: str) -> str:
    result = await approvals.decide(
        rec.client,
        proposal["id"],
        digest=approvals.shown_digest(proposal),
        approve=approve,
        reason=reason,
        actor=ACTOR,
        task_queue=rec.target.task_queue,
    )  # recorded in the audit by approvals.decide itself
    return f"{proposal['id']} {proposal['action']} -> {result.status}"


def build_takes(build_id: str, since: str) -> bool:
    """The build records what came with `since` (plain dotted versions)."""
    return tuple(int(p) for p in build_id.split(".")[:3]) >= tuple(int(p) for p in since.split("."))


def pick(proposals: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [p for p in proposals if p["action"] == action]
    assert len(found) == 1, (action, proposals)
    return found[0]


async def record_chain(rec: Recorder) -> Path:
    member = "fixture-chain"
    trips = [trip(member, n) for n in range(48)]
    log: list[str] = []
    await start_member(rec.client, rec.target, member, max_signals=8)
    async with rec.worker():
        await rec.feed(member, trips[:8])
        made = await proposals_for(rec, member, ticket(member, 1, CHARGE, day=2))
        log.append(await decide(rec, pick(made, "grant_points"), True, "checked the ride"))
        log.append(await decide(rec, pick(made, "message_member"), False, "we call instead"))
        refund = {
            "type": "refund",
            "event_id": f"{member}-r3",
            "member_id": member,
            "occurred_at": "2026-03-02T20:30:00Z",
            "refers_to": trips[3]["event_id"],
        }
        malformed = {"type": "bogus", "event_id": "junk", "member_id": member}
        await rec.feed(member, [*trips[8:12], refund, malformed, trips[2]])
        adjustment = Adjustment(250, "lost-trip credit", ACTOR, "fixture-adjust-1")
        handle = rec.client.get_workflow_handle(member_workflow_id(member))
        for _ in range(2):  # the second is a retry: answered, applied once
            result = await handle.execute_update(MemberWorkflow.adjust, adjustment)
            log.append(f"adjust {adjustment.request_id}: {result.message}")
        # redemptions (0.4.0 on): one redeemed and retried, one redeemed then cancelled
        for request_id in ("fixture-redeem-1", "fixture-redeem-1", "fixture-redeem-2"):
            redeem = RedeemRequest(request_id, "coffee", "2026-03-02T21:00:00Z", ACTOR)
            answer = await handle.execute_update(MemberWorkflow.redeem, redeem)
            log.append(f"redeem {request_id}: {answer.message}")
        cancel = CancelRedemption("fixture-redeem-2", "wrong reward", ACTOR)
        answer = await handle.execute_update(MemberWorkflow.cancel_redemption, cancel)
        log.append(f"cancel fixture-redeem-2: {answer.message}")
        made = await proposals_for(rec, member, ticket(member, 2, STATUS, day=3))
        log.append(await decide(rec, pick(made, "change_tier"), False, "no proof of status"))
        log.append(await decide(rec, pick(made, "message_member"), True, "tell them"))
        if build_takes(rec.build_id, "0.4.1"):
            # cancelled by the feed, and the agent's goodwill reward for a bad ride
            redeem = RedeemRequest("fixture-redeem-3", "coffee", "2026-03-03T09:00:00Z", ACTOR)
            answer = await handle.execute_update(MemberWorkflow.redeem, redeem)
            log.append(f"redeem fixture-redeem-3: {answer.message}")
            cancelled = {
                "type": "redemption_cancelled",
                "event_id": f"{member}-c1",
                "member_id": member,
                "occurred_at": "2026-03-03T09:30:00Z",
                "refers_to": "fixture-redeem-3",
                "reason": "reward out of stock",
            }
            await rec.feed(member, [cancelled])
            made = await proposals_for(rec, member, ticket(member, 4, BAD_RIDE, day=3))
            log.append(await decide(rec, pick(made, "redeem_reward"), True, "sorry for the ride"))
            log.append(await decide(rec, pick(made, "message_member"), False, "we call instead"))
        await rec.feed(member, trips[12:30], bulk=True)
        await rec.idle(member)
    async with rec.worker():
        # small grants approved by policy from now on: the deployment's guardrails
        await guardrails.change(
            rec.client, rec.target, {"auto_approve_max_points": 300}, reason="fixture", actor=ACTOR
        )
        made = await proposals_for(rec, member, ticket(member, 3, CHARGE, day=5))
        grant = pick(made, "grant_points")
        assert grant["status"] == "approved" and grant["decided_by"] == AUTO_APPROVE_POLICY, grant
        log.append(f"{grant['id']} grant_points -> approved by policy")
        log.append(await decide(rec, pick(made, "message_member"), False, "no message needed"))
        for n in range(30, 48, 3):
            await rec.feed(member, trips[n : n + 3])
        state = await rec.idle(member)
        _, histories = await rec.chain(member)
        agent_runs = [
            {"workflow_id": wid, "history": as_json(await rec.agent_run(wid, run_id))}
            for wid, run_id in agent_children(histories)
        ]
    assert len(histories) >= 4, f"only {len(histories)} runs"
    return write(
        f"member-{rec.build_id}-chain.json",
        {
            "build_id": rec.build_id,
            "workflow_id": member_workflow_id(member),
            "notes": log,
            "state": state,
            "histories": [as_json(h) for h in histories],
            # the AgentTurnWorkflow child runs (offline model, local activities)
            "agent_runs": agent_runs,
        },
    )


async def record_rollback(rec: Recorder) -> Path:
    tag = "fixture-rb"
    touched = [f"{tag}-{i}" for i in range(2)]
    bad = drill_build_id(rec.build_id, BUG)
    async with rec.worker():
        for member in touched:
            await start_member(rec.client, rec.target, member, max_signals=6)
            await rec.feed(member, member_events(member, "a", 8, day=1))
        async with rec.worker(drill=BUG):
            await releases.set_release(rec.client, rec.target, bad, reason="drill: double points")
            for member in touched:
                await rec.feed(member, member_events(member, "b", 14, day=5))
            await releases.set_release(
                rec.client, rec.target, rec.build_id, reason="drill over: back to the good build"
            )
            for member in touched:
                await rec.feed(member, member_events(member, "c", 7, day=9))
            damaged = {m: (await rec.chain(m))[0] for m in touched}
            # a page per member and a page per run: both the preview and the rollback
            # continue as new, as they do every 50 and 20 pages at scale
            preview_id = await previews.start_preview(
                rec.client, rec.target.task_queue, bad, page_size=1, pages_per_run=1
            )
            report = await releases.preview_rollback(
                rec.client, bad, task_queue=rec.target.task_queue, preview_id=preview_id
            )
            assert report.affected == len(touched) and report.changing, report
            handle = await releases.start_rollback(
                rec.client,
                rec.target,
                bad,
                reason="repair the drill's members",
                preview_id=report.preview_id,
                pages_per_run=1,
            )
            progress = await handle.result()
            assert progress.state == "done" and progress.verified_ok == len(touched), progress
            assert progress.after_preview is not None
            latest = await rec.client.get_workflow_handle(handle.id).describe()
            runs = await chain_histories(rec.client, handle.id, run_id=latest.run_id)
            history = runs[0]
            preview_latest = await rec.client.get_workflow_handle(preview_id).describe()
            preview_runs = await chain_histories(
                rec.client, preview_id, run_id=preview_latest.run_id
            )
            after_id = progress.after_preview["preview_id"]
            after = await rec.client.get_workflow_handle(after_id).fetch_history()
            page = await rec.client.get_workflow_handle(page_id(preview_id, 0)).fetch_history()
            members: dict[str, Any] = {}
            for member in touched:
                state = (await wait_applied(rec.client, [member]))[member]
                _, histories = await rec.chain(member)
                # the runs before the reset point are in both chains; the reset run
                # copies the base run's id into its first event, so compare whole runs
                repaired = [as_json(h) for h in histories]
                old = await chain_histories(
                    rec.client, member_workflow_id(member), run_id=damaged[member]
                )
                members[member] = {
                    "workflow_id": member_workflow_id(member),
                    "state": state,
                    "histories": repaired,
                    # the runs the reset replaced (the bad build's tasks are in them)
                    "damaged_histories": [as_json(h) for h in old if as_json(h) not in repaired],
                }
    return write(
        f"rollback-{rec.build_id}.json",
        {
            "build_id": rec.build_id,
            "bad_build": bad,
            "workflow_id": handle.id,
            "progress": dataclasses.asdict(progress),
            "history": as_json(history),
            "later_runs": [as_json(h) for h in runs[1:]],
            "preview": {"workflow_id": preview_id, "runs": [as_json(h) for h in preview_runs]},
            "after_preview": {"workflow_id": after_id, "history": as_json(after)},
            "page": {"workflow_id": page_id(preview_id, 0), "history": as_json(page)},
            "members": members,
        },
    )


async def record_flood(rec: Recorder) -> Path:
    """A member sent bulk signals back to back: its tasks apply a bounded share each,
    the rest waits (drain timers), and it continues as new once the inbox is empty."""
    member = "fixture-flood"
    events = [
        {
            "type": "purchase",
            "event_id": f"{member}-{n}",
            "member_id": member,
            "occurred_at": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            "amount_cents": 100 + n % 5_000,
        }
        for n in range(4_800)
    ]
    events.insert(
        2_000,
        {
            "type": "refund",
            "event_id": "fr",
            "member_id": member,
            "occurred_at": "2026-03-28T23:00:00Z",
            "refers_to": f"{member}-7",
        },
    )
    await start_member(rec.client, rec.target, member, max_signals=8, max_events=1_500)
    handle = rec.client.get_workflow_handle(member_workflow_id(member))
    async with rec.worker():
        for burst in range(0, len(events), 1_601):
            # four signals back to back: more than one task applies them, the rest waits
            part = events[burst : burst + 1_601]
            for i in range(0, len(part), 401):
                await handle.signal(SIGNAL_EVENTS, part[i : i + 401])
            await wait_applied(rec.client, [member])  # drained: it continues as new
        state = await rec.idle(member)
        _, histories = await rec.chain(member)
    assert state["events_processed"] == len(events), state["events_processed"]
    return write(
        f"member-{rec.build_id}-flood.json",
        {
            "build_id": rec.build_id,
            "workflow_id": member_workflow_id(member),
            "notes": [f"{len(events)} events in back-to-back signals of 500"],
            "state": state,
            "histories": [as_json(h) for h in histories],
        },
    )


async def record_guardrails(rec: Recorder) -> Path:
    async with rec.worker():
        for n, values in enumerate(({"max_points_per_day": 800}, {"enabled": False})):
            await guardrails.change(
                rec.client, rec.target, values, reason=f"fixture change {n}", actor=ACTOR
            )
        await guardrails.change(
            rec.client, rec.target, {}, reason="back to default", reset=["enabled"], actor=ACTOR
        )
        handle = rec.client.get_workflow_handle(guardrails_workflow_id(rec.target.deployment))
        history = await handle.fetch_history()
        current = await guardrails.current(rec.client, rec.target.deployment)
    return write(
        f"guardrails-{rec.build_id}.json",
        {
            "build_id": rec.build_id,
            "workflow_id": handle.id,
            "values": current.values,
            "history": as_json(history),
        },
    )


async def record_audit(rec: Recorder) -> Path:
    for n, action in enumerate(("settings.save", "secrets.set", "member.adjust")):
        await audit.record(
            rec.client,
            rec.target,
            action,
            reason=f"fixture entry {n}",
            subject="fixture",
            details={"n": n},
            actor=ACTOR,
        )
    async with rec.worker():
        handle = rec.client.get_workflow_handle(AUDIT_WORKFLOW_ID)

        async def all_recorded() -> list[Any] | None:
            entries: list[Any] = await handle.query("entries")
            return entries if entries and entries[-1]["subject"] == "fixture" else None

        entries = await eventually(all_recorded, timeout=30)
        history = await handle.fetch_history()
    return write(
        f"audit-{rec.build_id}.json",
        {
            "build_id": rec.build_id,
            "workflow_id": AUDIT_WORKFLOW_ID,
            "entries": entries,
            "history": as_json(history),
        },
    )


async def record_effects(rec: Recorder) -> Path:
    """An approved message delivered to a webhook (build 0.3.0 on): the effect's
    workflow and the deployment's destinations workflow."""
    secret = "fixture-signing-secret"
    secrets.set_secret("webhook", secret)
    member = f"fx-effect-{uuid.uuid4().hex[:6]}"
    async with webhook(secret) as hook, rec.worker():
        await effects.change_config(
            rec.client,
            rec.target,
            destinations={"message": effects.destinations_of([hook.url], [])},
            reason="fixture",
        )
        await start_member(rec.client, rec.target, member, max_signals=500)
        made = await proposals_for(rec, member, ticket(member, 1, CHARGE, 2))
        message = pick(made, "message_member")
        await decide(rec, message, True, "send the apology")
        effect = rec.client.get_workflow_handle(
            effect_workflow_id(message["id"], message["digest"])
        )

        async def delivered() -> bool:
            state = await effect.query("state")
            return bool(state["status"] == "delivered")

        await eventually(delivered, timeout=60)
        config = rec.client.get_workflow_handle(effects_config_workflow_id(rec.target.deployment))
        histories = {"effect": await effect.fetch_history(), "config": await config.fetch_history()}
    return write(
        f"effects-{rec.build_id}.json",
        {
            "build_id": rec.build_id,
            "effect": {"workflow_id": effect.id, "history": as_json(histories["effect"])},
            "config": {"workflow_id": config.id, "history": as_json(histories["config"])},
        },
    )


async def record_bulk(rec: Recorder) -> Path:
    """A policy decision (build 0.4.2 on): the BulkDecisionWorkflow rejecting two
    members' messages, one of which the member refuses (decided by hand first). (Their
    grants are small: the guardrails approve them by themselves.)"""
    members = [f"fx-bulk-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    async with rec.worker():
        grants = []
        for member in members:
            await start_member(rec.client, rec.target, member, max_signals=500)
            made = await proposals_for(rec, member, ticket(member, 1, CHARGE, 2))
            grants.append(pick(made, "message_member"))
        chosen = [{"id": g["id"], "digest": approvals.shown_digest(g)} for g in grants]
        await decide(rec, grants[1], False, "decided by hand before the policy")
        report = await approvals.decide_by_policy(
            rec.client,
            approvals.parse_policy("action=message_member"),
            approve=False,
            reason="fixture policy",
            actor=ACTOR,
            task_queue=rec.target.task_queue,
            confirmed=chosen,
        )
        (bulk_id,) = report.bulk_ids
        history = await rec.client.get_workflow_handle(bulk_id).fetch_history()
    return write(
        f"bulk-{rec.build_id}.json",
        {
            "build_id": rec.build_id,
            "workflow_id": bulk_id,
            "decided": report.decided,
            "failed": report.failed,
            "history": as_json(history),
        },
    )


async def record(build_id: str) -> list[Path]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=sa.ALL_KEYS,
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal"],
    )
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            suffix = uuid.uuid4().hex[:6]
            target = Target(None, "default", Path(data_dir), f"rec-{suffix}", f"rec-{suffix}")
            rec = Recorder(env.client, target, build_id)
            return [
                await record_chain(rec),
                await record_rollback(rec),
                await record_flood(rec),
                await record_guardrails(rec),
                await record_audit(rec),
                await record_effects(rec),
                *([await record_bulk(rec)] if build_takes(build_id, "0.4.2") else []),
            ]
    finally:
        await env.shutdown()


if __name__ == "__main__":
    for path in asyncio.run(record(sys.argv[1])):
        print(path, path.stat().st_size)
