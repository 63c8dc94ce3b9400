"""The agent's guardrails for a whole deployment: one record every worker obeys.

One perpetual workflow per deployment (`loyalty-desk-guardrails-<deployment>`) holds the
guardrail values (workflows.agent_policy.AgentPolicy) that differ from the defaults.
Operators change them with the `set` update (validated: known names, whole numbers
within LIMITS; who and why required); the workflow publishes the values in its memo,
where each worker's settings activity reads them (a describe, no worker needed), so a
member gets the same guardrails whichever worker runs it, and a machine's own
settings file has no say in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from workflows.agent_policy import AgentPolicy, policy_problems
    from workflows.config_record import hold_then_continue, note_change, who_and_why_problem

GUARDRAILS_PREFIX = "loyalty-desk-guardrails-"
MEMO_POLICY = "policy"
MEMO_VERSION = "version"
MEMO_CHANGES = "changes"
CHANGES_KEEP = 20  # recent changes shown with the values
CHANGES_PER_RUN = 500
MAX_TEXT = 500


def guardrails_workflow_id(deployment: str) -> str:
    return f"{GUARDRAILS_PREFIX}{deployment}"


@dataclass
class GuardrailsChange:
    """New values for some guardrails (the others keep theirs); `reset` names values to
    return to their defaults."""

    values: dict[str, Any]
    actor: str
    reason: str
    reset: list[str] = field(default_factory=list)


@dataclass
class Guardrails:
    """The deployment's guardrail values that differ from the defaults, and their story."""

    values: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # newest last

    def policy(self) -> AgentPolicy:
        return AgentPolicy.from_dict(self.values)


def change_problem(change: GuardrailsChange) -> str | None:
    if not isinstance(change.values, dict) or not isinstance(change.reset, list):
        return "values must be an object and reset a list of names"
    if not change.values and not change.reset:
        return "nothing to change"
    problems = policy_problems(change.values)
    defaults = AgentPolicy().as_dict()
    problems += [f"unknown guardrail {str(n)[:40]!r}" for n in change.reset if n not in defaults]
    if problems:
        return "; ".join(problems)
    return who_and_why_problem(change.actor, change.reason, MAX_TEXT)


@workflow.defn(name="GuardrailsWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class GuardrailsWorkflow:
    @workflow.init
    def __init__(self, state: Guardrails | None = None) -> None:
        self._state = state or Guardrails()
        self._changes = 0

    @workflow.run
    async def run(self, state: Guardrails | None = None) -> None:
        self._publish()
        await hold_then_continue(self._state, lambda: self._changes, CHANGES_PER_RUN)

    @workflow.update(name="set")
    def set(self, change: GuardrailsChange) -> Guardrails:
        values = dict(self._state.values)
        for name in change.reset:
            values.pop(name, None)
        values.update(change.values)
        defaults = AgentPolicy().as_dict()
        self._state.values = {k: v for k, v in values.items() if v != defaults[k]}
        note_change(
            self._state,
            actor=change.actor,
            reason=change.reason,
            keep=CHANGES_KEEP,
            set=dict(change.values),
            reset=list(change.reset),
        )
        self._changes += 1
        self._publish()
        return self._state

    @set.validator
    def _validate_set(self, change: GuardrailsChange) -> None:
        problem = change_problem(change)
        if problem:
            raise ValueError(problem)

    @workflow.query(name="current")
    def current(self) -> Guardrails:
        return self._state

    def _publish(self) -> None:
        workflow.upsert_memo(
            {
                MEMO_POLICY: dict(self._state.values),
                MEMO_VERSION: self._state.version,
                MEMO_CHANGES: list(self._state.changes),
            }
        )
