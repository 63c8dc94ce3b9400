"""A worker that stops in the middle of agent runs leaves nothing that breaks the
process: the abandoned runs are finalized by the garbage collector without errors
(see runtime/agents_compat.py), and the runs resume on the next worker, even one that
calls its model differently."""

from __future__ import annotations

import ast
import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

from agents import ModelResponse

from activities.offline_model import OfflineRulesModel
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, ticket


class SlowModel(OfflineRulesModel):
    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        await asyncio.sleep(3)
        return await super().get_response(*args, **kwargs)


def parse_while_collecting() -> None:
    source = Path(ast.__file__).read_text(encoding="utf-8") * 2
    gc.set_threshold(1, 1, 1)
    try:
        for _ in range(10):
            ast.parse(source)
    finally:
        gc.set_threshold(700, 10, 10)
        gc.collect()


async def test_stopping_mid_run_is_clean_and_the_run_resumes(agents: AgentDeployment) -> None:
    raised: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: raised.append(repr(unraisable.exc_value))
    member = new_member()
    try:
        async with agents.worker(model=SlowModel()):
            await agents.feed(
                member, [ticket(member, n, f"{CHARGE} ({n})", day=2 + n) for n in range(3)]
            )
            await asyncio.sleep(1)  # the first run waits for its model call
        await asyncio.sleep(0.5)
        # collect the abandoned runs while parsing, where a finalizer's error used to
        # trip CPython's "AST constructor recursion depth mismatch"
        parse_while_collecting()
    finally:
        sys.unraisablehook = previous
    assert [r for r in raised if "different Context" in r] == []
    async with agents.worker():
        state = await agents.wait_for(
            member,
            lambda s: (
                s["agent"]["runs"] >= 3
                and s["agent"]["running"] is None
                and not s["agent"]["queued"]
            ),
            timeout=60,
        )
    # the run in flight met a worker with another model activity kind (a local activity
    # for the offline model): it failed fast as non-deterministic and its trigger reran
    assert state["agent"]["queued"] == []
    # the first ticket's run made the proposals; the others found them pending already
    assert {p["trigger"]["key"] for p in state["proposals"]} == {f"{member}-k0"}
