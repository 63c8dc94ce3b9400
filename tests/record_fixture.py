"""Record a member history from the current build, for the replay tests.

    python -m tests.record_fixture BUILD_ID

Keep one fixture per released build: histories recorded by every build must keep
replaying with the current code. The other histories of a build (a member chain with
decided proposals, a rollback, the audit log): `python -m tests.record_scenarios BUILD_ID`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from runtime.connect import Target
from runtime.feed import send_member, wait_applied
from runtime.simulate import simulate
from runtime.worker import WorkerSettings, announce, build_worker
from tests.conftest import temporal_binary
from workflows import search_attributes as sa
from workflows.member import member_workflow_id

FIXTURES = Path(__file__).parent / "fixtures" / "histories"


async def record(build_id: str) -> Path:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=sa.ALL_KEYS,
    )
    try:
        client = env.client
        suffix = uuid.uuid4().hex[:6]
        target = Target(None, "default", Path("."), f"rec-{suffix}", f"rec-{suffix}")
        settings = WorkerSettings(target.task_queue, target.deployment, build_id)
        member = "fixture-00000"
        events = [e for e in simulate(120, 1, seed=7, prefix="fixture")]
        events.insert(10, {"type": "bogus", "event_id": "junk"})
        events.insert(20, events[5])  # a resend
        async with build_worker(client, settings):
            await announce(client, settings)
            await send_member(client, target, member, events[:60], bulk=False)
            await send_member(client, target, member, events[60:], bulk=True)
            state = (await wait_applied(client, [member]))[member]
            handle = client.get_workflow_handle(member_workflow_id(member))
            history = await handle.fetch_history()
        FIXTURES.mkdir(parents=True, exist_ok=True)
        path = FIXTURES / f"member-{build_id}.json"
        path.write_text(
            json.dumps(
                {"build_id": build_id, "state": state, "history": json.loads(history.to_json())},
                indent=1,
            )
        )
        return path
    finally:
        await env.shutdown()


if __name__ == "__main__":
    print(asyncio.run(record(sys.argv[1])))
