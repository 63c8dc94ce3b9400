"""Issue 13, the whole record: every operator action reaches the audit with who, when,
what, why, target and outcome; the entries chain by hash across continue-as-new into
an append-only archive that outlives the runs retention deletes; `audit verify` names
the first entry an attacker edited, in an exported file or in the store."""

from __future__ import annotations

import csv
import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from runtime import adjustments, audit, audit_log, guardrails, previews, releases
from tests.auditkit import desk
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.memberkit import feed_and_sync, start_member, trip
from workflows.audit import (
    AUDIT_WORKFLOW_ID,
    AuditCarry,
    AuditWorkflow,
    decision_entry,
    entry_hash,
    policy_entry,
)

FIELDS = ("seq", "at", "actor", "action", "target", "reason", "outcome", "details", "hash")


async def exported(dep: Deployment, fmt: str = "jsonl") -> list[dict[str, Any]]:
    code, out, err = await cli(dep, "audit", "export", "--format", fmt)
    assert code == 0, err
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        return [{**r, "seq": int(r["seq"]), "details": json.loads(r["details"])} for r in rows]
    return [json.loads(line) for line in out.splitlines()]


async def live_count(client: Client) -> int:
    return len(await client.get_workflow_handle(AUDIT_WORKFLOW_ID).query(AuditWorkflow.entries))


async def test_every_operator_action_is_exported_with_who_when_what_why_target_outcome(
    deployment: Deployment, real_keyring: str
) -> None:
    client = deployment.client
    secret_value = "sk-audit-sentinel-4f1b9c7e"
    async with desk(deployment) as target:
        await releases.set_release(client, target, "1.0", reason="first release")
        await releases.record_release_start(
            client, target, "1.1", reason="canary", pid=4242, drill=None
        )
        await guardrails.change(client, target, {"points_cap": 4000}, reason="tighter cap")
        await start_member(client, target, "aud-1", max_signals=1000)
        await feed_and_sync(client, target, "aud-1", [trip("aud-1", 1)])
        await adjustments.adjust(client, target, "aud-1", 150, reason="goodwill")
        with pytest.raises(adjustments.AdjustmentRefused, match="limited to"):
            await adjustments.adjust(client, target, "aud-1", 10**9, reason="fat finger")
        await audit.send(
            client,
            decision_entry("aud-1:t1:0", "d1", True, "alice", "looks right", "approved"),
            task_queue=target.task_queue,
        )
        await audit.send(
            client,
            decision_entry("aud-1:t2:0", "d2", False, "alice", "too generous", "rejected"),
        )
        await audit.send(
            client,
            policy_entry(
                "action=grant_points,max_points=500",
                True,
                "bob",
                "small grants",
                3,
                ["m2:t:0", "m1:t:0"],
                ["m3:t:0"],
            ),
        )
        preview_id = await previews.start_preview(client, target.task_queue, "0.9")
        await releases.start_rollback(
            client, target, "0.9", reason="bad build 0.9", preview_id=preview_id
        )
        # the keyring and the settings file, from the command line
        code, _, err = await cli(
            deployment, "secrets", "set", "openai", "--reason", "new key", stdin=secret_value
        )
        assert code == 0 and "not recorded" not in err, err
        code, _, err = await cli(deployment, "secrets", "delete", "openai", "--reason", "revoked")
        assert code == 0 and "not recorded" not in err, err
        code, _, err = await cli(
            deployment, "model", "set", "--provider", "openai", "--model", "m-1", "--reason", "try"
        )
        assert code == 0 and "not recorded" not in err, err

        await eventually(lambda: _at_least(client, 12), timeout=20)
        rows = await exported(deployment)
        as_csv = await exported(deployment, "csv")
        code, out, err = await cli(deployment, "audit", "verify")
        assert code == 0, out + err

    by_action: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        assert all(row.get(f) not in (None, "") for f in FIELDS), row
        by_action.setdefault(row["action"], []).append(row)
    assert {
        "release.set-current",
        "release.start",
        "guardrails.set",
        "member.adjust",
        "approval.approve",
        "approval.reject",
        "approval.policy",
        "rollback.start",
        "secret.set",
        "secret.delete",
        "settings.change",
    } <= set(by_action)
    applied, refused = by_action["member.adjust"]
    assert (applied["target"], applied["details"]["points"], applied["outcome"]) == (
        "aud-1",
        150,
        "applied",
    )
    assert refused["outcome"].startswith("refused: an adjustment is limited to")
    (bulk,) = by_action["approval.policy"]
    assert bulk["details"]["decided"] == ["m1:t:0", "m2:t:0"]
    assert bulk["details"]["failed"] == ["m3:t:0"]
    assert bulk["target"] == "action=grant_points,max_points=500" and bulk["actor"] == "bob"
    (stored,) = by_action["secret.set"]
    assert (stored["target"], stored["reason"]) == ("openai", "new key")
    (settings,) = by_action["settings.change"]
    assert set(settings["details"]["changed"]) == {"model.model", "model.provider"}
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert [(r["seq"], r["hash"]) for r in as_csv] == [(r["seq"], r["hash"]) for r in rows]
    # a secret's value is never on the record, in any form
    assert secret_value not in json.dumps(rows)


async def _at_least(client: Client, n: int) -> bool:
    try:
        return await live_count(client) >= n
    except RPCError:
        return False


async def test_the_chain_survives_continue_as_new_and_retention_and_names_the_first_edit(
    deployment: Deployment, tmp_path: Path
) -> None:
    client = deployment.client
    async with desk(deployment) as target:
        # a log whose runs continue as new after five entries
        await client.start_workflow(
            AuditWorkflow.run,
            AuditCarry(records_per_run=5),
            id=AUDIT_WORKFLOW_ID,
            task_queue=target.task_queue,
        )
        for n in range(1, 13):
            await audit.record(client, target, "test.note", reason=f"note {n}", subject=f"s{n}")
            if n % 5 == 0:  # a run continues as new after its fifth entry
                await eventually(partial(_continued, client), timeout=30)
        await eventually(lambda: _at_least(client, 2), timeout=20)

        # the open run holds the last two; the ten before are read from the archive,
        # never from the closed runs that retention deletes (the archive lost, below,
        # they are missing)
        assert await live_count(client) == 2
        store = audit.archive_file(target.data_dir)
        assert len(store.read_text().splitlines()) == 10
        rows = await exported(deployment)
        assert [r["reason"] for r in rows] == [f"note {n}" for n in range(1, 13)]
        assert [r["prev"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
        assert all(r["hash"] == entry_hash({**r, "subject": r["target"]}) for r in rows)
        code, out, err = await cli(deployment, "audit", "verify")
        assert code == 0 and "12 entries" in out, out + err

        # an exported file, edited: entry 4's reason
        edited = tmp_path / "edited.jsonl"
        lines = [json.loads(line) for line in (await _export_text(deployment, "jsonl"))]
        lines[3]["reason"] = "nothing to see"
        edited.write_text("".join(json.dumps(r) + "\n" for r in lines))
        code, out, err = await cli(deployment, "audit", "verify", "--file", str(edited))
        assert code == 1 and "entry 4" in out and "edited" in out, out + err
        # the same as CSV
        csv_path = tmp_path / "edited.csv"
        text = "\n".join(await _export_text(deployment, "csv")) + "\n"
        csv_path.write_text(text.replace("note 9", "note 99"))
        code, out, err = await cli(deployment, "audit", "verify", "--file", str(csv_path))
        assert code == 1 and "entry 9" in out, out + err

        original = store.read_text()
        # the store, edited in place: entry 7's reason
        store.write_text(original.replace('"note 7"', '"note seven"'))
        code, out, err = await cli(deployment, "audit", "verify", "--json")
        verdict = json.loads(out)
        assert code == 1 and verdict["first_broken"]["seq"] == 7, out + err
        assert verdict["first_broken"]["line"] == 7

        # the store rewritten by someone who recomputes every hash after entry 3: the
        # chain holds in itself, but not against the anchors the open run keeps
        forged = [json.loads(line) for line in original.splitlines()]
        forged[2]["reason"] = "rewritten"
        prev = forged[1]["hash"]
        for row in forged[2:]:
            row["prev"] = prev
            row["hash"] = prev = entry_hash({**row, "subject": row["target"]})
        store.write_text("".join(json.dumps(r) + "\n" for r in forged))
        code, out, err = await cli(deployment, "audit", "verify", "--json")
        verdict = json.loads(out)
        assert code == 1 and verdict["first_broken"]["seq"] == 5, out + err
        assert "anchor" in verdict["first_broken"]["problem"]

        # the store lost: the entries it held are named missing, with where they went
        store.unlink()
        code, out, err = await cli(deployment, "audit", "verify")
        assert code == 1 and "entries 1..10 are missing" in out and str(store) in out, out

        # a line deleted from the store
        kept = [line for line in original.splitlines() if '"note 2"' not in line]
        store.write_text("\n".join(kept) + "\n")
        code, out, err = await cli(deployment, "audit", "verify")
        assert code == 1 and "expected entry 2" in out, out
        store.write_text(original)
        code, out, err = await cli(deployment, "audit", "verify")
        assert code == 0, out + err


async def _export_text(dep: Deployment, fmt: str) -> list[str]:
    code, out, err = await cli(dep, "audit", "export", "--format", fmt)
    assert code == 0, err
    return out.splitlines()


async def _continued(client: Client) -> bool:
    """The open run holds nothing yet: its predecessor just continued as new."""
    try:
        return await live_count(client) == 0
    except RPCError:
        return False


def test_a_verdict_on_rows_built_here() -> None:
    """verify_rows alone: a chain of three, and each way of breaking it."""
    rows: list[dict[str, Any]] = []
    prev = ""
    for n in (1, 2, 3):
        row = {
            "seq": n,
            "at": f"2026-01-0{n}T00:00:00Z",
            "actor": "a",
            "action": "x",
            "target": "t",
            "reason": "r",
            "outcome": "o",
            "details": {"n": n},
            "prev": prev,
        }
        row["hash"] = prev = entry_hash({**row, "subject": row["target"]})
        rows.append(row)
    assert audit_log.verify_rows(rows).ok
    reordered = [rows[0], rows[2], rows[1]]
    assert audit_log.verify_rows(reordered).first_broken["seq"] == 3  # type: ignore[index]
    changed = [rows[0], {**rows[1], "details": {"n": 20}}, rows[2]]
    assert audit_log.verify_rows(changed).first_broken["seq"] == 2  # type: ignore[index]
    assert not audit_log.verify_rows(rows[1:]).ok  # the first entries cut off


async def test_a_settings_save_records_names_never_values(deployment: Deployment) -> None:
    """What the Settings tab's Save records: the sections and names that changed, and
    the secrets stored by name; a value pasted where a name goes never reaches it."""
    client = deployment.client
    pasted = "sk-pasted-into-the-model-field-91c2"
    before = {"model": {"provider": "offline"}, "temporal": {"namespace": "default"}}
    after = {
        "model": {"provider": "openai", "model": pasted, "base_url": "http://127.0.0.1:9/v1"},
        "temporal": {"namespace": "default"},
        "audit": {"archive": "/srv/audit.jsonl"},
    }
    async with desk(deployment) as target:
        await audit.record_saved_settings(
            client, target, before, after, secrets_stored=["openai"], backend="SecretService"
        )
        await eventually(lambda: _at_least(client, 3), timeout=20)
        rows = await exported(deployment)
    assert [(r["action"], r["target"], r["details"]) for r in rows] == [
        ("settings.change", "audit", {"changed": ["audit.archive"]}),
        (
            "settings.change",
            "model",
            {"changed": ["model.base_url", "model.model", "model.provider"]},
        ),
        ("secret.set", "openai", {"name": "openai"}),
    ]
    assert pasted not in json.dumps(rows)


async def test_an_audit_log_ended_and_started_again_does_not_pass_verify(
    deployment: Deployment,
) -> None:
    """Whoever may terminate workflows can end the log; the next entry starts a new chain
    at 1. The archive still holds the old chain: verify says so, export hides nothing."""
    client = deployment.client
    async with desk(deployment) as target:
        await client.start_workflow(
            AuditWorkflow.run,
            AuditCarry(records_per_run=2),
            id=AUDIT_WORKFLOW_ID,
            task_queue=target.task_queue,
        )
        for n in (1, 2):
            await audit.record(client, target, "test.note", reason=f"old {n}", subject="s")
        await eventually(partial(_continued, client), timeout=30)
        await client.get_workflow_handle(AUDIT_WORKFLOW_ID).terminate(reason="covering tracks")
        await audit.record(client, target, "test.note", reason="new 1", subject="s")
        await eventually(lambda: _at_least(client, 1), timeout=20)
        rows = await exported(deployment)
        code, out, err = await cli(deployment, "audit", "verify")
    assert [(r["seq"], r["reason"]) for r in rows] == [(1, "old 1"), (2, "old 2"), (1, "new 1")]
    assert code == 1 and "BROKEN at entry 1" in out, out + err
