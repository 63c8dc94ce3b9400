"""Helpers the desktop tests share: a connected session with a worker, damaged members for
the rollback, the approvals queue, and small readers of Qt models."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget
from temporalio.client import Client

from desktop.approvals_model import ApprovalsModel
from desktop.approvals_panel import ApprovalsPanel
from desktop.asyncutil import wait_until
from desktop.session import Session
from runtime.connect import Target, connect
from runtime.feed import send_member, wait_applied
from runtime.worker import WorkerSettings, announce, build_worker
from tests.agent.conftest import CHARGE, ticket, trip
from tests.conftest import Deployment
from tests.kit.events import member_events
from tests.memberkit import start_member
from workflows.member import MemberWorkflow, member_workflow_id
from workflows.rollback_messages import COMPARED_FIELDS
from workflows.rules import replay

UI = "http://ui.test:8233"


TIMEOUT_S = 20


@asynccontextmanager
async def desk_session(deployment: Deployment) -> AsyncIterator[Session]:
    """A session as the app has it once connected, with a worker of build 1.0 running
    on this (qasync) loop; the agent uses the offline model."""
    target = deployment.target
    target.data_dir.mkdir(parents=True, exist_ok=True)
    client = await connect(target)
    settings = dataclasses.replace(deployment.settings("1.0"), data_dir=target.data_dir)
    # the app runs its worker in another process; here it shares ours (the qloop
    # fixture keeps garbage collection on the GUI thread)
    async with build_worker(client, settings):
        await announce(client, settings)
        session = Session(target=target, start_worker=False)
        session.client = client
        session.ui_url = UI
        yield session


def unique(name: str) -> str:
    """A member id no other test on the shared server uses."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def screenshot(widget: QWidget, name: str) -> None:
    """For people to look at: LOYALTY_DESK_SCREENSHOTS=DIR keeps NAME.png."""
    where = os.environ.get("LOYALTY_DESK_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(Path(where) / f"{name}.png"))


def column(model: Any, key: str) -> int:
    return [c.key for c in model.COLUMNS].index(key)


def cells(model: Any, key: str) -> list[str]:
    col = column(model, key)
    return [model.index(r, col).data() for r in range(model.rowCount())]


ROLLBACK_TIMEOUT_S = 180


@asynccontextmanager
async def worker(
    client: Client, target: Target, build: str, drill: str | None = None
) -> AsyncIterator[None]:
    """An in-process worker on the test's own loop (the fixture's runs on pytest's)."""
    settings = WorkerSettings(
        task_queue=target.task_queue, deployment=target.deployment, build_id=build, drill=drill
    )
    async with build_worker(client, settings):
        await announce(client, settings)
        yield


class Members:
    """The test's members and every event fed to each (the truth a repair must reach)."""

    def __init__(self, client: Client, target: Target, count: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.client, self.target = client, target
        self.ids = [f"w{tag}-{i}" for i in range(count)]
        self.fed: dict[str, list[Any]] = {m: [] for m in self.ids}

    async def start(self) -> None:
        for member in self.ids:
            await start_member(self.client, self.target, member, max_signals=6)

    async def feed(self, phase: str, count: int, day: int) -> dict[str, dict[str, Any]]:
        for member in self.ids:
            events = member_events(member, phase, count, day)
            self.fed[member].extend(events)
            await send_member(self.client, self.target, member, events, bulk=False)
        return await wait_applied(self.client, self.ids)

    def truth(self, member: str) -> dict[str, Any]:
        summary = replay(member, self.fed[member]).summary()
        return {k: summary[k] for k in COMPARED_FIELDS}

    async def assert_repaired(self, build: str) -> None:
        states = await wait_applied(self.client, self.ids)
        for member in self.ids:
            assert {k: states[member][k] for k in COMPARED_FIELDS} == self.truth(member), member
            assert states[member]["build_id"] == build


async def connected_session(target: Target) -> Session:
    session = Session(target=target, start_worker=False)
    await session.start()
    return session


async def open_queue(
    qtbot: Any, session: Session, deployment: Deployment, members: list[str]
) -> ApprovalsPanel:
    """Each member gets a trip and a double-charge ticket: the offline model proposes a
    100-point grant and a message for each; the panel shows all of them."""
    client = session.client
    assert client is not None
    for member in members:
        await send_member(
            client,
            deployment.target,
            member,
            [trip(member, 1, 10_000), ticket(member, 1, CHARGE)],
            bulk=False,
        )
    await wait_applied(client, members)
    panel = ApprovalsPanel(session=session)
    qtbot.addWidget(panel)
    panel.resize(1200, 560)
    panel.show()

    async def all_listed() -> bool:
        await panel.refresh()
        return panel.model.rowCount() == 2 * len(members)

    await wait_until(all_listed, timeout=TIMEOUT_S, interval=0.5)
    return panel


async def points(session: Session, member: str) -> int:
    assert session.client is not None
    handle = session.client.get_workflow_handle(member_workflow_id(member))
    return int((await handle.query(MemberWorkflow.state))["points"])


def row_of(panel: ApprovalsPanel, proposal_id: str) -> int:
    for row in range(panel.proxy.rowCount()):
        if panel.proxy.index(row, 0).data(ApprovalsModel.KeyRole) == proposal_id:
            return row
    raise AssertionError(f"{proposal_id} is not shown")
