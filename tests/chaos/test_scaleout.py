"""Scale-out: stateless workers on an external cluster, reached over mutual TLS (one
with an API key from the environment, one with a key from the OS keyring), fed while
one of them is SIGKILLed: every member still equals the rules."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from runtime.connect import ConnectError, connect, resolve_target
from tests.chaos.cluster import Pki, external_cluster, make_pki, tls_front
from tests.chaos.kit import (
    assert_members_match_rules,
    by_member,
    read_jsonl,
    run,
    sigkill,
    spawn,
    start_worker,
    stop_all,
    worker_identity,
)
from tests.conftest import eventually
from workflows.member import MemberWorkflow, member_workflow_id

NAMESPACE = "loyalty-prod"


def tls_options(pki: Pki, port: int, data_dir: Path) -> list[str]:
    return [
        "--address",
        f"127.0.0.1:{port}",
        "--namespace",
        NAMESPACE,
        "--tls-ca",
        str(pki.ca),
        "--tls-cert",
        str(pki.client_cert),
        "--tls-key",
        str(pki.client_key),
        "--data-dir",
        str(data_dir),
    ]


async def test_three_workers_on_an_external_cluster_lose_nothing_when_one_is_killed(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    keyring = {"LOYALTY_DESK_KEYRING_SERVICE": f"loyalty-desk-test-{uuid.uuid4().hex[:8]}"}
    async with (
        external_cluster(NAMESPACE) as plain,
        tls_front(pki, int(plain.split(":")[1])) as port,
    ):
        options = tls_options(pki, port, tmp_path / "desk")
        target = resolve_target(
            f"127.0.0.1:{port}",
            NAMESPACE,
            tmp_path / "desk",
            tls_ca=pki.ca,
            tls_cert=pki.client_cert,
            tls_key=pki.client_key,
        )
        client = await connect(target)

        # the API key: from the keyring where there is one, else from the environment
        await run("secrets", "set", "temporal", stdin="sentinel-api-key\n", env=keyring)
        logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
        workers = [
            await start_worker(*options, "--api-key", env=keyring, log=logs[0]),
            await start_worker(
                *options, env={"LOYALTY_DESK_API_KEY": "sentinel-env-key"}, log=logs[1]
            ),
            await start_worker(*options, log=logs[2]),
        ]
        try:
            first = await run(
                "feed",
                *options,
                "--simulate",
                "1200",
                "--members",
                "40",
                "--seed",
                "1",
                "--out",
                str(tmp_path / "one.jsonl"),
                "--wait",
            )
            assert first["applied"]["events_processed"] == 1200
            fed = by_member(read_jsonl(tmp_path / "one.jsonl"))

            # kill a worker that demonstrably ran member tasks, while the next wave is fed
            victim = await busiest_worker(client, list(fed), workers)
            second = await spawn(
                "feed",
                *options,
                "--simulate",
                "2400",
                "--members",
                "40",
                "--seed",
                "2",
                "--out",
                str(tmp_path / "two.jsonl"),
                "--json",
            )
            probe = client.get_workflow_handle(member_workflow_id(next(iter(fed))))

            async def second_wave_arriving() -> bool:
                state = await probe.query(MemberWorkflow.state)
                return bool(state["events_processed"] > len(fed[next(iter(fed))]))

            await eventually(second_wave_arriving, timeout=60, interval=0.2)
            await sigkill(victim)
            _, err = await second.communicate()
            assert second.returncode == 0, err.decode()[-2000:]

            for member, events in by_member(read_jsonl(tmp_path / "two.jsonl")).items():
                fed.setdefault(member, []).extend(events)
            states = await assert_members_match_rules(client, fed)
            assert sum(s["events_processed"] for s in states.values()) == 3600
        finally:
            await stop_all(workers)
            await run("secrets", "delete", "temporal", env=keyring)


async def busiest_worker(
    client: Client, members: list[str], workers: list[asyncio.subprocess.Process]
) -> asyncio.subprocess.Process:
    """The worker process that completed the most member workflow tasks so far."""
    identities = {worker_identity(w): w for w in workers}
    counts = dict.fromkeys(identities, 0)
    for member in members:
        history = await client.get_workflow_handle(member_workflow_id(member)).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                who = event.workflow_task_completed_event_attributes.identity
                if who in counts:
                    counts[who] += 1
    best = max(counts, key=counts.__getitem__)
    assert counts[best] > 0, counts
    return identities[best]


async def test_missing_api_key_and_bad_tls_files_are_one_line_errors(tmp_path: Path) -> None:
    keyring = {"LOYALTY_DESK_KEYRING_SERVICE": f"loyalty-desk-test-{uuid.uuid4().hex[:8]}"}
    proc = await spawn(
        "worker", "--address", "127.0.0.1:1", "--api-key", "--data-dir", str(tmp_path), env=keyring
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert err.decode().strip().splitlines() == [
        "loyalty-desk: error: no Temporal API key: store one with "
        "`loyalty-desk secrets set temporal` (reads stdin) or set LOYALTY_DESK_API_KEY"
    ]
    missing = tmp_path / "nope.pem"
    target = resolve_target("127.0.0.1:1", tls_ca=missing, data_dir=tmp_path)
    try:
        await connect(target)
    except ConnectError as error:
        assert (
            str(error) == f"cannot read the TLS CA certificate {missing}: No such file or directory"
        )
    else:
        raise AssertionError("connected with a missing CA file")
    bad = resolve_target("127.0.0.1:1", tls_cert=missing, data_dir=tmp_path)
    try:
        await connect(bad)
    except ConnectError as error:
        assert str(error) == "mTLS needs both --tls-cert and --tls-key"
    else:
        raise AssertionError("connected with a certificate but no key")
    embedded = resolve_target(tls=True, data_dir=tmp_path)
    try:
        await connect(embedded)
    except ConnectError as error:
        assert "add --address" in str(error)
    else:
        raise AssertionError("TLS options accepted for the embedded server")


def test_workers_we_spawn_get_the_same_connection_options(tmp_path: Path) -> None:
    """`release start` and the window start workers with tls_args(): same cluster, same keys."""
    from runtime.cli import _defaults, build_parser
    from runtime.cliutil import target_of
    from runtime.connect import tls_args

    for options in (
        {"tls_ca": "ca.pem", "tls_cert": "me.pem", "tls_key": "me.key", "api_key": True},
        {"tls_server_name": "cluster.test"},
        {"tls": False, "api_key": True},
        {},
    ):
        target = resolve_target("10.0.0.1:7233", "prod", tmp_path, **options)  # type: ignore[arg-type]
        argv = [
            "worker",
            "--address",
            "10.0.0.1:7233",
            "--namespace",
            "prod",
            "--data-dir",
            str(tmp_path),
            *tls_args(target),
        ]
        again = target_of(_defaults(build_parser().parse_args(argv)))
        assert again == target, (options, argv)
