"""The deployment's agent guardrails (workflows/guardrails.py): read, change, audited.

One operation for the CLI (`loyalty-desk guardrails show|set`) and the Settings panel.
"""

from __future__ import annotations

import time
from typing import Any

from temporalio.client import Client

from activities.support import memo_of
from runtime import audit
from runtime.config_update import set_with_start
from runtime.connect import Target
from runtime.deployment import identity
from workflows.guardrails import (
    MEMO_CHANGES,
    MEMO_POLICY,
    MEMO_VERSION,
    Guardrails,
    GuardrailsChange,
    GuardrailsWorkflow,
    change_problem,
    guardrails_workflow_id,
)


class GuardrailsError(ValueError):
    """A change the guardrails refuse; the message is one line."""


async def current(client: Client, deployment: str) -> Guardrails:
    """The deployment's guardrails (defaults everywhere when nobody changed one), from
    the workflow's memo: no worker needs to be running."""
    memo = await memo_of(client, guardrails_workflow_id(deployment))
    if memo is None:
        return Guardrails()
    values = memo.get(MEMO_POLICY)
    changes = memo.get(MEMO_CHANGES)
    return Guardrails(
        values=values if isinstance(values, dict) else {},
        version=int(memo.get(MEMO_VERSION) or 0),
        changes=changes if isinstance(changes, list) else [],
    )


async def change(
    client: Client,
    target: Target,
    values: dict[str, Any],
    *,
    reason: str,
    reset: list[str] | None = None,
    actor: str | None = None,
) -> Guardrails:
    """Set guardrail values for every member of the deployment; recorded in the audit."""
    request = GuardrailsChange(dict(values), actor or identity(), reason, list(reset or []))
    problem = change_problem(request)
    if problem:
        raise GuardrailsError(problem)
    result: Guardrails = await set_with_start(
        client,
        target,
        guardrails_workflow_id(target.deployment),
        GuardrailsWorkflow.run,
        GuardrailsWorkflow.set,
        request,
    )
    await audit.record(
        client,
        target,
        "guardrails.set",
        reason=reason,
        subject=target.deployment,
        details={"set": dict(values), "reset": list(reset or []), "version": result.version},
        actor=request.actor,
        outcome=f"guardrails version {result.version}",
    )
    return result


class GuardrailsReader:
    """What a worker's settings activity tells members: the deployment's guardrails, read
    from the guardrails workflow's memo (a describe: no worker needs to answer). Read for
    every agent run by default (a change applies to the next run, as the operator
    expects); `max_age_s` lets a worker reuse a read for that long."""

    def __init__(self, client: Client, deployment: str, *, max_age_s: float = 0.0) -> None:
        self._client, self._deployment = client, deployment
        self._max_age = max_age_s
        self._values: dict[str, Any] = {}
        self._read_at = float("-inf")

    async def policy(self) -> dict[str, Any]:
        if self._max_age and time.monotonic() - self._read_at < self._max_age:
            return dict(self._values)
        guardrails = await current(self._client, self._deployment)
        self._values = guardrails.policy().as_dict()
        self._read_at = time.monotonic()
        return dict(self._values)
