"""The member workflow's public contract: what any client of a member needs to know.

One member is one perpetual workflow of type `MemberWorkflow` with id `member-<member_id>`,
started by signal-with-start. This module spells the names once; the workflow, the CLI,
the window, the rollback and the history readers import them from here. It imports
nothing (no Temporal, no Qt, no Agents SDK), so any client can read it cheaply.

Changing a value here changes what running histories and other people's clients see:
add names, never rename them.
"""

from __future__ import annotations

# -- the workflow -----------------------------------------------------------------------
MEMBER_WORKFLOW = "MemberWorkflow"  # the workflow type
MEMBER_PREFIX = "member-"  # workflow id = MEMBER_PREFIX + member id


def member_workflow_id(member_id: str) -> str:
    return f"{MEMBER_PREFIX}{member_id}"


def member_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(MEMBER_PREFIX)


# -- messages a member takes ------------------------------------------------------------
SIGNAL_EVENT = "event"  # one raw event object (also the start signal of signal-with-start)
SIGNAL_EVENTS = "events"  # a list of raw event objects
SIGNAL_AGENT_RESULT = "agent_result"  # the member's agent child workflow reports back
UPDATE_ADJUST = "adjust"  # a manual adjustment with a reason (Adjustment)
UPDATE_SYNC = "sync"  # returns the state once every received event is applied
UPDATE_DECIDE = "decide"  # a person approves or rejects a proposal (Decision)
UPDATE_REDEEM = "redeem"  # spend points on a catalogue reward (RedeemRequest), from 0.4.0
UPDATE_CANCEL_REDEMPTION = "cancel_redemption"  # return a redemption's points (CancelRedemption)
QUERY_STATE = "state"  # the member's summary
QUERY_PROPOSALS = "proposals"  # the agent's proposals and their decisions
QUERY_AGENT = "agent"  # the agent desk: budgets, breaker, queued triggers

# -- what a member starts -------------------------------------------------------------
AGENT_TURN_WORKFLOW = "AgentTurnWorkflow"  # one agent run, a child of the member

# -- events ------------------------------------------------------------------------------
EVENT_TYPES = ("trip_completed", "purchase", "refund", "support_ticket", "redemption_cancelled")
# what builds before 0.4.1 take (they reject a redemption_cancelled as an unknown type)
EVENT_TYPES_BEFORE_0_4_1 = EVENT_TYPES[:4]
# the field naming the earlier thing an event is about: the earning event a refund takes
# back, the redemption (its request id) a redemption_cancelled returns
REFERS_TO = {"refund": "refers_to", "redemption_cancelled": "refers_to"}
# the field carrying the amount (whole cents) of each event type that has one
AMOUNT_FIELD = {"trip_completed": "fare_cents", "purchase": "amount_cents"}
AMOUNT_FIELDS = tuple(AMOUNT_FIELD.values())
# event types that earn points (and can be refunded)
EARNING_TYPES = frozenset(AMOUNT_FIELD)
