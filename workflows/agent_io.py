"""What the agent side of the member workflow exchanges with activities.

Workflow code may not import `activities/` (an import-linter contract), so the
activities the member workflow calls are declared here as typed stubs: the worker
registers the implementations under the same names (`activities/model_provider.py`,
`activities/outbox.py`), and workflow code still calls them by typed reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

AGENT_SETTINGS_ACTIVITY = "loyalty_agent_settings"
OUTBOX_DELIVER_ACTIVITY = "loyalty_outbox_deliver"


@dataclass
class AgentSettings:
    """The worker's agent configuration: guardrail values and the model in use (never a key)."""

    policy: dict[str, Any] = field(default_factory=dict)
    model_label: str = "offline rules model"
    provider: str = "offline"
    model: str = "offline-rules"
    # estimated price, US dollars per million tokens
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0
    # member events per second the worker is taking in right now (agent runs yield)
    ingest_events_per_s: float = 0.0


@dataclass
class OutboxEntry:
    """One external effect of an approved proposal; one EffectWorkflow per proposal id and
    content digest (activities/outbox.py)."""

    proposal_id: str
    member_id: str
    kind: str  # message | fraud_case | tier_change
    payload: dict[str, Any]
    decided_by: str
    decided_at: str


@dataclass
class OutboxReceipt:
    proposal_id: str
    inserted: bool  # False: the entry was already there (a retry or a replayed approval)
    row_id: int  # builds up to 0.2.0: a row of a per-worker SQLite file; now always 0
    effect_id: str = ""  # the EffectWorkflow that delivers it (workflows/effects.py)


@activity.defn(name=AGENT_SETTINGS_ACTIVITY)
async def agent_settings() -> AgentSettings:
    """Signature only; the worker registers `activities.model_provider.AgentSettingsSource`."""
    raise NotImplementedError


@activity.defn(name=OUTBOX_DELIVER_ACTIVITY)
async def outbox_deliver(entry: OutboxEntry) -> OutboxReceipt:
    """Signature only; the worker registers `activities.outbox.Outbox.deliver`, which
    starts the effect's EffectWorkflow (once: idempotent by workflow id)."""
    raise NotImplementedError
