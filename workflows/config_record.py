"""What the deployment's settings workflows share (EffectsConfigWorkflow: where effects
go; GuardrailsWorkflow: the agent's guardrails): each holds one versioned record with
the story of its recent changes, changed only by a `set` update that names who and why,
and continues as new after a bounded number of changes. Deterministic helpers; each
workflow keeps its own handlers and calls these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.actors import reserved_actor_problem
    from workflows.isotime import iso


class Versioned(Protocol):
    version: int
    changes: list[dict[str, Any]]  # newest last


def who_and_why_problem(actor: object, reason: object, max_text: int) -> str | None:
    """Why a change's actor or reason is refused (None: both are fine)."""
    for name, text in (("actor", actor), ("reason", reason)):
        if not isinstance(text, str) or not text.strip():
            return f"the {name} is required"
        if len(text) > max_text:
            return f"the {name} is longer than {max_text} characters"
    assert isinstance(actor, str)
    return reserved_actor_problem(actor)


def note_change(record: Versioned, *, actor: str, reason: str, keep: int, **details: Any) -> None:
    """A new version of `record`, its change kept with the latest `keep`."""
    record.version += 1
    record.changes.append(
        {
            "version": record.version,
            "at": iso(workflow.now()),
            "actor": actor.strip(),
            "reason": reason.strip(),
            **details,
        }
    )
    del record.changes[:-keep]


async def hold_then_continue(record: Any, changes: Callable[[], int], per_run: int) -> None:
    """Serve updates until `per_run` changes (or the server suggests it), let the last
    handlers finish, then go on in a new run with `record`."""
    await workflow.wait_condition(
        lambda: changes() >= per_run or workflow.info().is_continue_as_new_suggested()
    )
    await workflow.wait_condition(workflow.all_handlers_finished)
    workflow.continue_as_new(record)
