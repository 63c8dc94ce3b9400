"""Hostile input through `feed` (a file, then stdin) and through raw signals against a
real worker: each bad event is rejected with a one-line reason and recorded, or handled
by the rules; no member workflow fails a task; the valid events around them all count."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from runtime.connect import Target
from runtime.feed import MAX_EVENT_BYTES, rejects_log, send_member, wait_applied
from runtime.server import EmbeddedServer, ServerConfig, private_network_available
from tests.chaos.kit import assert_members_match_rules, failed_tasks, rules_state
from tests.conftest import Deployment, temporal_binary
from tests.kit.cli import cli
from workflows.member import MemberWorkflow, member_workflow_id


def event(kind: str, event_id: str, member: str, **fields: Any) -> dict[str, Any]:
    base = {"type": kind, "event_id": event_id, "member_id": member}
    return {**base, "occurred_at": "2026-03-02T10:00:00Z", **fields}


def hostile_lines(a: str, b: str) -> list[tuple[bytes, str | None]]:
    """(line, what the feed says about it: a reason fragment, or None when it passes)."""
    good = [
        event("purchase", "p1", a, amount_cents=12_000),
        event("trip_completed", "t1", a, fare_cents=2_500),
        event("purchase", "p2", b, amount_cents=40_000),
    ]

    def j(raw: Any) -> bytes:
        return json.dumps(raw).encode()

    bad_amount = event("purchase", "x", a)
    lines: list[tuple[bytes, str | None]] = [(j(e), None) for e in good]
    lines += [
        (b"{oops", "invalid JSON"),
        (b"[1, 2", "invalid JSON"),
        (b"null", "must be a JSON object"),
        (b'"just text"', "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "unreadable JSON"),
        (b'{"amount_cents": ' + b"9" * 5_000 + b"}", "unreadable JSON"),
        (b'{"type": "purchase", "member_id": "\xff\xfe"}', "not UTF-8"),
        (b"x" * 3_000_000, "over the 2 MB limit"),
        (j({**bad_amount, "event_id": "w1", "amount_cents": "500"}), "whole number"),
        (j({**bad_amount, "event_id": "w2", "amount_cents": 5.5}), "whole number"),
        (j({**bad_amount, "event_id": "w3", "amount_cents": True}), "whole number"),
        (
            b'{"type":"purchase","event_id":"w4","member_id":"%s","occurred_at":'
            b'"2026-03-02T10:00:00Z","amount_cents":NaN}' % a.encode(),
            "whole number",
        ),
        (j({**bad_amount, "member_id": 123, "amount_cents": 500}), "member_id"),
        (j({**bad_amount, "event_id": None, "amount_cents": 500}), "missing event_id"),
        (j(event("purchase", "w5", a, occurred_at=12345, amount_cents=500)), "ISO 8601"),
        (
            j(event("purchase", "w6", a, occurred_at="2026-03-02T10:00:00", amount_cents=500)),
            "no time zone",
        ),
        (j(event("teleport", "w7", a)), "unknown event type"),
        (j({**bad_amount, "event_id": "w8", "amount_cents": -500}), "must be positive"),
        (j({**bad_amount, "event_id": "w9", "amount_cents": 0}), "must be positive"),
        (j({**bad_amount, "event_id": "w10", "amount_cents": 10**30}), "above the limit"),
        (j({**bad_amount, "event_id": "w11", "amount_cents": 5_000_001}), "above the limit"),
        (
            j(event("purchase", "w12", a, occurred_at="1970-01-01T00:00:00Z", amount_cents=500)),
            "outside",
        ),
        (
            j(
                event(
                    "purchase", "w13", a, occurred_at="0001-01-01T00:00:00+05:00", amount_cents=500
                )
            ),
            "outside",
        ),
        (
            j(event("purchase", "w14", a, occurred_at="9999-12-31T23:59:59Z", amount_cents=500)),
            "outside",
        ),
        # inside the contract's range, but a year ahead of its receipt: the member refuses it
        (
            j(event("purchase", "w15", a, occurred_at="2099-01-01T00:00:00Z", amount_cents=500)),
            None,
        ),
        (j(good[0]), None),  # a resend: counted once
        # a colliding id: a conflict in the feed (both lines named), still sent so the
        # member refuses it too
        (j({**good[1], "fare_cents": 9_999}), "with other content: a conflict"),
        (j(event("support_ticket", "w16", a, text="x" * 1_000_000)), "the limit is 10000"),
        (
            j(event("purchase", "w17", a, amount_cents=700, junk="y" * 500_000)),
            f"over the {MAX_EVENT_BYTES:,}-byte limit",
        ),
        (j(event("support_ticket", "u1", a, text="שלום \u202eright-to-left\u202c ok")), None),
        (j(event("support_ticket", "u2", a, text="nul \u0000 inside")), None),
        (j(event("support_ticket", "u3", a, text="lone \ud800 surrogate")), "lone surrogate"),
        (j(event("support_ticket", "u4", a, text="\U0001f600" * 10_000)), None),
        (j(event("purchase", "\u05d0\u05d1-id", a, amount_cents=900)), None),
        (j(event("purchase", "nul\u0000id", a, amount_cents=900)), "control characters"),
        (
            j(event("purchase", "w18", "m\u200f" + a, amount_cents=900)),
            "member_id contains control",
        ),
        (j(event("refund", "r1", a, refers_to="p1")), None),
        (j(event("refund", "r2", a, refers_to="r1")), None),  # a refund of a refund
        (j(event("refund", "r3", a, refers_to="p1")), None),  # refunded twice
        (j(event("refund", "r4", a, refers_to="nowhere")), None),
        (j(event("refund", "r5", a, refers_to=None)), "missing refers_to"),
        (j(event("purchase", "p3", b, amount_cents=3_000)), None),
    ]
    return lines


async def feed_stdin(deployment: Deployment, data: bytes) -> tuple[int, str, str]:
    """`loyalty-desk feed -` with raw bytes on stdin."""
    return await cli(deployment, "feed", "-", "--wait", "--json", stdin=data)


def sent_per_member(lines: list[bytes], report: dict[str, Any]) -> dict[str, list[Any]]:
    """What the feed delivered to each member: every object line it did not hold back."""
    held_back = {r["line"] for r in report["rejects"] if not r["sent"]}
    sent: dict[str, list[Any]] = {}
    for number, line in enumerate(lines, start=1):
        if number not in held_back:
            raw = json.loads(line)
            sent.setdefault(raw["member_id"], []).append(raw)
    return sent


async def test_hostile_feed_lines_are_rejected_with_reasons_and_the_rest_counts(
    deployment: Deployment, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b = f"hostile-{tag}-a", f"hostile-{tag}-b"
    cases = hostile_lines(a, b)
    lines = [line for line, _ in cases]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    async with deployment.worker("1.0"):
        code, out, err = await cli(deployment, "feed", str(path), "--wait", "--json")
        assert code == 0, err
        report = json.loads(out)
        expected = {n: why for n, (_, why) in enumerate(cases, start=1) if why is not None}
        reasons = {r["line"]: r["reason"] for r in report["rejects"]}
        assert set(reasons) == set(expected)
        for number, fragment in expected.items():
            assert fragment in reasons[number], (number, reasons[number])
            assert reasons[number] and "\n" not in reasons[number] and len(reasons[number]) < 300
        logged = [json.loads(line) for line in rejects_log(deployment.target.data_dir).open()]
        assert sorted(r["line"] for r in logged) == sorted(expected)

        sent = sent_per_member(lines, report)
        assert set(sent) == {a, b}
        states = await assert_members_match_rules(deployment.client, sent)
        truth = rules_state(a, sent[a])
        # the member itself refused what only it can judge
        refused = {r["event_id"]: r["reason"] for r in states[a]["rejections"]}
        assert "in the future" in refused["w15"]
        assert "already used by a different event" in refused["t1"]
        assert "which earned no points" in refused["r2"]
        assert "already refunded" in refused["r3"]
        # a refund of an event not seen (yet) waits for it, in the member's hold
        assert "r4" not in refused
        assert [h["event_id"] for h in states[a]["held"]] == ["r4"]
        assert states[a]["duplicates_ignored"] == 1
        assert states[a]["events_processed"] == truth["events_processed"] == 7
        assert states[b]["events_processed"] == 2

        # the same input again, through stdin: nothing counts twice
        code, out, err = await feed_stdin(deployment, path.read_bytes())
        assert code == 0, err
        assert json.loads(out)["rejected"] == len(expected)
        again = {m: events * 2 for m, events in sent.items()}
        after = await assert_members_match_rules(deployment.client, again)
        assert after[a]["points"] == states[a]["points"]
        assert after[a]["events_processed"] == states[a]["events_processed"]
        assert await failed_tasks(deployment.client, [a, b]) == []


# -- raw signals ------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**60), max_value=10**60),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates, NUL, RTL
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = (
    "type",
    "event_id",
    "member_id",
    "occurred_at",
    "amount_cents",
    "fare_cents",
    "refers_to",
    "text",
)


@st.composite
def hostile_signal(draw: st.DrawFn, member: str) -> Any:
    """Anything JSON can carry, or an event of this member with fields swapped for junk."""
    kind = draw(st.sampled_from(("trip_completed", "purchase", "refund", "support_ticket")))
    base = event(
        kind,
        draw(st.sampled_from(("g1", "g2", "h1", "h2"))),
        member,
        fare_cents=2_000,
        amount_cents=3_000,
        refers_to="g1",
        text="help",
    )
    mutated = draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3))
    return draw(st.one_of(json_values, st.just({**base, **mutated})))


def collect(strategy: Any, count: int) -> list[Any]:
    """`count` values from a hypothesis strategy (sent afterwards, on one event loop)."""
    found: list[Any] = []

    @settings(
        max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def take(value: Any) -> None:
        found.append(value)

    take()
    return found


PLACEHOLDER = "member-placeholder"


async def test_hypothesis_raw_signals_never_fail_or_stall_a_member(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"raw-{tag}-{i}" for i in range(60)]
    samples = collect(hostile_signal(PLACEHOLDER), len(members))
    fed: dict[str, list[Any]] = {}
    client = deployment.client
    async with deployment.worker("1.0"):
        for member, sample in zip(members, samples, strict=False):
            hostile = json.loads(json.dumps(sample).replace(PLACEHOLDER, member))
            good = [
                event("purchase", "g1", member, amount_cents=5_000),
                event("trip_completed", "g2", member, fare_cents=1_500),
            ]
            await send_member(client, deployment.target, member, good[:1], bulk=False)
            handle = client.get_workflow_handle(member_workflow_id(member))
            await handle.signal(MemberWorkflow.event, hostile)
            await handle.signal(MemberWorkflow.events, [hostile, good[1]])
            fed[member] = [good[0], hostile, hostile, good[1]]
        try:
            states = await assert_members_match_rules(client, fed)
        except AssertionError as error:  # which hostile input it was, to replay the case
            wrong = {m: fed[m][1] for m in fed if m in str(error)}
            raise AssertionError(f"{error}; what they were sent: {wrong!r}"[:4000]) from None
        assert all(s["events_processed"] >= 1 for s in states.values())
        assert await failed_tasks(client, list(fed)) == []


def raw_payload(data: bytes, encoding: bytes = b"json/plain") -> Payloads:
    return Payloads(payloads=[Payload(metadata={"encoding": encoding}, data=data)])


async def signal_raw(client: Client, member: str, name: str, payloads: Payloads) -> None:
    """A signal whose payload bytes we choose: what a client in another language may send."""
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=member_workflow_id(member)),
            signal_name=name,
            input=payloads,
            identity="chaos-test",
            request_id=str(uuid.uuid4()),
        )
    )


async def test_undecodable_and_oversized_signals_are_refused_and_the_member_goes_on(
    deployment: Deployment,
) -> None:
    member = f"bytes-{uuid.uuid4().hex[:6]}"
    client = deployment.client
    first = event("purchase", "g1", member, amount_cents=5_000)
    last = event("trip_completed", "g2", member, fare_cents=1_500)
    undecodable = [
        raw_payload(b'{"type": "purchase", "amount_cents": 1' + b"0" * 5_000 + b"}"),
        raw_payload(b"{oops"),
        raw_payload(b'"\xff\xfe"'),  # not UTF-8
        raw_payload(b"\x08\x96\x01", encoding=b"binary/protobuf"),
        raw_payload(b"", encoding=b"no/such-encoding"),
    ]
    async with deployment.worker("1.0"):
        await send_member(client, deployment.target, member, [first], bulk=False)
        for payloads in undecodable:
            for name in ("event", "events"):
                await signal_raw(client, member, name, payloads)
        # over Temporal's 2 MB payload limit: the sender gets a clear error, nothing arrives
        handle = client.get_workflow_handle(member_workflow_id(member))
        huge = event("support_ticket", "big", member, text="z" * 3_000_000)
        try:
            await handle.signal(MemberWorkflow.event, huge)
        except RPCError as error:
            assert "limit" in error.message.lower() or "size" in error.message.lower(), (
                error.message
            )
        else:
            raise AssertionError("a 3 MB signal was accepted")
        await handle.signal(MemberWorkflow.event, last)
        state = (await wait_applied(client, [member]))[member]
        assert state["events_processed"] == 2
        assert state["events_rejected"] == 2 * len(undecodable)
        assert all("\n" not in r["reason"] for r in state["rejections"])
        assert await failed_tasks(client, [member]) == []


# -- the embedded server against a web page ---------------------------------------------

ATTACKER = "https://attacker.example"
NO_PRIVATE_NETWORK = "this machine allows no private network: the server is on 127.0.0.1 (README)"


def listening_ports(pid: int) -> set[int]:
    """Every TCP port that `pid` and its descendants listen on, whichever network they
    are in (the machine's, or one of their own)."""
    pids, seen = [pid], 0
    while seen < len(pids):
        for task in Path(f"/proc/{pids[seen]}/task").glob("*"):
            with contextlib.suppress(OSError):
                pids += [int(child) for child in (task / "children").read_text().split()]
        seen += 1
    ports: set[int] = set()
    for p in pids:
        inodes = set()
        for fd in Path(f"/proc/{p}/fd").glob("*"):
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:[") : -1])
        for table in ("tcp", "tcp6"):
            for path in (Path(f"/proc/{p}/net/{table}"), Path(f"/proc/self/net/{table}")):
                with contextlib.suppress(OSError):
                    for line in path.read_text().splitlines()[1:]:
                        fields = line.split()
                        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def cross_origin_post(port: int, path: str, body: str) -> str:
    """What a web page's fetch(..., {method: "POST", mode: "no-cors", body}) sends: a
    text/plain POST, which browsers send without asking the server first."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Origin": ATTACKER, "Referer": f"{ATTACKER}/", "Content-Type": "text/plain"}
        connection.request("POST", path, body=body.encode(), headers=headers)
        return str(connection.getresponse().status)
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


@pytest.mark.parametrize("private_network", [None, False], ids=["private", "loopback"])
async def test_a_web_page_cannot_write_to_any_port_of_the_embedded_server(
    tmp_path: Path, private_network: bool | None
) -> None:
    """The `adjust` update a web page could POST to the dev server's HTTP API (it added
    250,000 points), sent to every port the app's server opened, Web UI included: in its
    private network, and in the fallback on 127.0.0.1 (a machine that allows none)."""
    if private_network is None and not private_network_available():
        pytest.skip(NO_PRIVATE_NETWORK)
    data_dir = tmp_path / "data"
    member = f"web-{uuid.uuid4().hex[:6]}"
    config = ServerConfig(data_dir=data_dir, headless_ui=False, private_network=private_network)
    async with EmbeddedServer(config) as server:
        assert server.private == (private_network is None)
        assert server.pid is not None
        client = await Client.connect(server.address)
        target = Target(address=server.address, namespace="default", data_dir=data_dir)
        deployment = Deployment(client=client, target=target, address=server.address)
        async with deployment.worker("1.0"):
            first = event("purchase", "p1", member, amount_cents=12_000)
            await send_member(client, target, member, [first], bulk=False)
            before = (await wait_applied(client, [member]))[member]
            ports = listening_ports(server.pid)
            # gRPC, HTTP API, metrics, history, matching, worker, Web UI: found them all
            assert len(ports) >= 7, ports
            workflow_id = member_workflow_id(member)
            update = {
                "request": {
                    "meta": {"updateId": "from-a-web-page"},
                    "input": {
                        "name": "adjust",
                        "args": [
                            {
                                "points": 250_000,
                                "reason": "a gift from a web page",
                                "actor": "web page",
                                "request_id": "from-a-web-page",
                            }
                        ],
                    },
                },
                "waitPolicy": {
                    "lifecycleStage": "UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED"
                },
            }
            path = f"/api/v1/namespaces/default/workflows/{workflow_id}/update/adjust"
            answers = {
                port: await asyncio.to_thread(cross_origin_post, port, path, json.dumps(update))
                for port in sorted(ports)
            }
            after = await client.get_workflow_handle(workflow_id).query(MemberWorkflow.state)
            assert after["points"] == before["points"], answers
            assert after["ledger"] == before["ledger"], answers
            assert not [a for a in answers.values() if a.startswith("2")], answers


# -- the embedded server against another user of the machine ---------------------------


@pytest.fixture
def stranger() -> Iterator[tuple[list[str], Path]]:
    """Another account on this machine: the command prefix that runs as it, and a
    `temporal` CLI it can run. Root only (it creates the account)."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("creates an OS user: root only")
    user = f"ld{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", user], check=True, capture_output=True)
    as_user = ["runuser", "-u", user, "--"]
    binary = Path(temporal_binary())
    shared = None
    try:
        if subprocess.run([*as_user, str(binary), "--version"], capture_output=True).returncode:
            # our venv is not theirs to run: a copy they can (/tmp is traversable)
            shared = Path(tempfile.mkdtemp())
            shared.chmod(0o755)
            binary = Path(shutil.copy2(binary, shared / "temporal"))
        yield as_user, binary
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        if shared is not None:
            shutil.rmtree(shared)


async def test_another_local_user_cannot_use_the_embedded_server(
    tmp_path: Path, stranger: tuple[list[str], Path]
) -> None:
    """Another account on the machine, with the same `temporal` CLI, tries to terminate a
    workflow through the server's socket and every port it opened."""
    if not private_network_available():
        pytest.skip(NO_PRIVATE_NETWORK)
    as_user, binary = stranger
    async with EmbeddedServer(ServerConfig(data_dir=tmp_path / "data")) as server:
        assert server.pid is not None
        client = await Client.connect(server.address)
        victim = await client.start_workflow("Anything", id="victim", task_queue="nobody")
        ports = listening_ports(server.pid)
        assert len(ports) >= 6, ports

        def terminate(address: str, who: list[str]) -> str:
            command = [str(binary), "workflow", "terminate", "--address", address]
            command += ["--workflow-id", "victim", "--reason", "not yours"]
            command += ["--command-timeout", "5s"]
            done = subprocess.run([*who, *command], capture_output=True, timeout=60)
            return f"{done.returncode}: {done.stderr.decode().strip()[:200]}"

        tried = {
            address: await asyncio.to_thread(terminate, address, as_user)
            for address in [server.address, *(f"127.0.0.1:{p}" for p in sorted(ports))]
        }
        description = await victim.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING, tried
        # the same command as the operator does terminate it: the attempts above could
        # have worked, but for who made them
        assert (await asyncio.to_thread(terminate, server.address, [])).startswith("0:")
        description = await victim.describe()
        assert description.status == WorkflowExecutionStatus.TERMINATED


async def test_an_event_the_worker_cannot_read_is_rejected_alone_in_its_signal(
    deployment: Deployment,
) -> None:
    """A raw client's events signal holding, beside a good event, a value whose JSON
    Python reads but the worker's converter refuses (a lone surrogate escape): the bad
    one is rejected with a reason, the good one applies (it was lost with the batch)."""
    member = f"lone-{uuid.uuid4().hex[:6]}"
    lone = {"type": "purchase", "note": "\ud926", "member_id": member}
    good = [
        event("purchase", "g1", member, amount_cents=5_000),
        event("trip_completed", "g2", member, fare_cents=1_500),
    ]
    client = deployment.client
    async with deployment.worker("1.0"):
        await send_member(client, deployment.target, member, good[:1], bulk=False)
        handle = client.get_workflow_handle(member_workflow_id(member))
        await handle.signal(MemberWorkflow.events, [lone, good[1]])
        state = (await wait_applied(client, [member]))[member]
        assert state["events_processed"] == 2 and state["points"] == 65
        assert state["events_rejected"] == 1
        assert "unreadable event" in state["rejections"][-1]["reason"]
        assert await failed_tasks(client, [member]) == []
