"""Effects of approved proposals (workflows/effects.py): where they go, which were
delivered, and retrying one. One set of operations for the CLI (`loyalty-desk effects`)
and the window (the Effects view, Settings).

Everything is read from Temporal: the delivery record from visibility (each
EffectWorkflow's search attributes and memo, so no worker needs to answer), the
destinations from the deployment's EffectsConfigWorkflow memo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.effects import current_config
from recovery.found import if_found
from runtime import audit
from runtime.config_update import set_with_start
from runtime.connect import Target
from runtime.deployment import identity
from workflows.effects import (
    EFFECT_PREFIX,
    EFFECT_WORKFLOW,
    KINDS,
    MEMO_STATE,
    SIGNAL_POKE,
    STATUSES,
)
from workflows.effects_config import (
    EffectsConfig,
    EffectsConfigChange,
    EffectsConfigWorkflow,
    config_problem,
    effects_config_workflow_id,
)

LIST_LIMIT = 500


class EffectsError(ValueError):
    """A request the effects refuse; the message is one line."""


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def effects_query(target: Target, status: str | None = None, member: str | None = None) -> str:
    if status is not None and status not in STATUSES:
        raise EffectsError(f"unknown status {status[:40]!r}; known: {', '.join(STATUSES)}")
    parts = [f"WorkflowType = '{EFFECT_WORKFLOW}'", f"TaskQueue = {_literal(target.task_queue)}"]
    if status:
        parts.append(f"LoyaltyEffectStatus = {_literal(status)}")
    if member:
        parts.append(f"LoyaltyEffectMember = {_literal(member)}")
    return " AND ".join(parts)


def _row(execution: Any, memo: Mapping[str, Any]) -> dict[str, Any]:
    state = memo.get(MEMO_STATE)
    state = dict(state) if isinstance(state, dict) else {}
    state.setdefault("effect_id", execution.id)
    state.setdefault("status", "pending")
    running = execution.status == WorkflowExecutionStatus.RUNNING
    if not running and state["status"] not in ("delivered", "superseded"):
        # ended some other way (terminated, say): no longer delivering
        state["status"] = "failed"
        state["detail"] = f"the effect's workflow ended ({execution.status.name.lower()})"
    failing = [d for d in (state.get("deliveries") or {}).values() if d.get("status") == "failed"]
    state["answer"] = failing[-1]["answer"] if failing else ""
    state["started_at"] = execution.start_time.isoformat() if execution.start_time else ""
    return state


async def list_effects(
    client: Client,
    target: Target,
    *,
    status: str | None = None,
    member: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[dict[str, Any]]:
    """Effects, newest first: status, kind, member, attempts, each destination's answer."""
    query = effects_query(target, status, member)
    executions = [e async for e in client.list_workflows(query, limit=limit)]
    memos = await asyncio.gather(*(e.memo() for e in executions))
    return [_row(e, m) for e, m in zip(executions, memos, strict=True)]


async def counts(client: Client, target: Target, member: str | None = None) -> dict[str, int]:
    """How many effects are pending (undelivered), delivered, failed and superseded."""
    found = await asyncio.gather(
        *(client.count_workflows(effects_query(target, s, member)) for s in STATUSES)
    )
    return {s: c.count for s, c in zip(STATUSES, found, strict=True)}


def effect_id_of(text: str) -> str:
    text = text.strip()
    return text if text.startswith(EFFECT_PREFIX) else EFFECT_PREFIX + text


async def show(client: Client, effect_id: str) -> dict[str, Any]:
    description = await if_found(client.get_workflow_handle(effect_id_of(effect_id)).describe())
    if description is None:
        raise EffectsError(f"no effect {effect_id[:200]!r}")
    return _row(description, await description.memo())


async def retry(
    client: Client, target: Target, effect_id: str, *, reason: str, actor: str | None = None
) -> dict[str, Any]:
    """Try a failed or waiting effect again now (recorded in the audit)."""
    row = await show(client, effect_id)
    if row["status"] in ("delivered", "superseded"):
        raise EffectsError(f"{row['effect_id']} was {row['status']}; nothing to retry")
    description = await client.get_workflow_handle(row["effect_id"]).describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise EffectsError(f"{row['effect_id']} is no longer running ({row['detail']})")
    await client.get_workflow_handle(row["effect_id"]).signal(SIGNAL_POKE, "retry")
    await audit.record(
        client,
        target,
        "effects.retry",
        reason=reason,
        subject=row["effect_id"],
        details={"member": row.get("member_id"), "status_before": row["status"]},
        actor=actor,
    )
    return row


async def config(client: Client, target: Target) -> EffectsConfig:
    return await current_config(client, target.deployment)


@dataclass
class ConfigResult:
    config: EffectsConfig
    woken: int  # waiting or failed effects told to try again


async def change_config(
    client: Client,
    target: Target,
    *,
    destinations: dict[str, list[dict[str, Any]]] | None = None,
    smtp: dict[str, Any] | None = None,
    reason: str,
    actor: str | None = None,
) -> ConfigResult:
    """Set the destinations of some kinds and/or the SMTP server, for every worker of the
    deployment; effects of those kinds that wait undelivered try again at once."""
    change = EffectsConfigChange(dict(destinations or {}), actor or identity(), reason, smtp)
    problem = config_problem(change, await config(client, target))
    if problem:
        raise EffectsError(problem)
    await require_worker(client, target)
    result: EffectsConfig = await set_with_start(
        client,
        target,
        effects_config_workflow_id(target.deployment),
        EffectsConfigWorkflow.run,
        EffectsConfigWorkflow.set,
        change,
    )
    await audit.record(
        client,
        target,
        "effects.set",
        reason=reason,
        subject=target.deployment,
        # where effects go, by host: a webhook's path or query may hold a token
        details={
            "destinations": {
                kind: [_audited(item) for item in items]
                for kind, items in change.destinations.items()
            },
            "smtp": smtp is not None,
            "version": result.version,
        },
        actor=change.actor,
    )
    kinds = set(change.destinations) if smtp is None else set(KINDS)
    return ConfigResult(result, await wake(client, target, kinds))


async def require_worker(client: Client, target: Target) -> None:
    """A change is an update, which a worker applies: without one polling the task queue
    it would wait for one, so say so at once instead."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=target.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    described = await client.workflow_service.describe_task_queue(request)
    if not described.pollers:
        raise EffectsError(
            f"no worker polls {target.task_queue!r}: start one (`loyalty-desk worker`, "
            "or the window) and change the destinations again"
        )


async def wake(client: Client, target: Target, kinds: set[str]) -> int:
    """Tell running effects of these kinds (waiting or failed) to look again."""
    woken = 0
    for status in ("pending", "failed"):
        query = effects_query(target, status) + " AND ExecutionStatus = 'Running'"
        async for execution in client.list_workflows(query):
            memo = await execution.memo()
            state = memo.get(MEMO_STATE) or {}
            if state.get("kind") not in kinds:
                continue
            try:
                await client.get_workflow_handle(execution.id).signal(SIGNAL_POKE, "config")
                woken += 1
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
    return woken


def _audited(item: dict[str, Any]) -> str:
    if item.get("type") == "webhook":
        parts = urlsplit(str(item.get("url", "")))
        return f"webhook {parts.scheme}://{parts.netloc}"
    return "email"


def destinations_of(webhooks: list[str], emails: list[str]) -> list[dict[str, Any]]:
    return [{"type": "webhook", "url": u} for u in webhooks] + [
        {"type": "email", "to": t} for t in emails
    ]


def describe_destination(item: dict[str, Any]) -> str:
    return (
        f"webhook {item.get('url')}" if item.get("type") == "webhook" else f"email {item.get('to')}"
    )
