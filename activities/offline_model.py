"""The offline rules model: a transparent, rule-based policy behind the Agents SDK `Model`
interface. No key, no network, deterministic: the same case gives the same answer.

It reads the case the agent was given (the JSON in the user message: the member's
compact summary and the trigger) and calls the proposal tools by these rules:

| trigger | when | proposes |
|---|---|---|
| support ticket | the text tries to instruct the agent ("ignore ... rules", "pre-approved", ...) | flag_fraud + message_member (acknowledge) |
| support ticket | a status match request ("status match", "match my status", "tier match") | change_tier (one tier up; none for Diamond) + message_member (the request is under review) |
| support ticket | a charge problem ("charged twice", "overcharged", "detour", "paid extra") | grant_points (goodwill by tier: Blue 100, Gold 150, Platinum 200, Diamond 300) + message_member (apology) |
| support ticket | a bad ride ("bad experience", "rude", "dirty car", "unsafe", ...) | redeem_reward (goodwill: the cheapest reward the member's tier allows, from `member.rewards`; none before build 0.4.1) + message_member (apology) |
| support ticket | missing points ("did not get points", "not counted", ...) | message_member (how points are credited) |
| support ticket | anything else | message_member (acknowledge) |
| unusual activity | always | flag_fraud |
| nearing a tier | always | message_member (points to the next tier) |

A proposal the member already has pending is not proposed again. Ticket text is only
ever matched against these phrases, never followed. Tokens are estimated as
characters / 4 so that budgets and cost accounting work the same as with a real model;
the estimated price is zero.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
    Usage,
)
from agents.items import TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from workflows.agent_policy import OFFLINE_MODEL_LABEL
from workflows.rules import TIER_NAMES

MODEL_NAME = "offline-rules"
GOODWILL = {"Blue": 100, "Gold": 150, "Platinum": 200, "Diamond": 300}
INJECTION = (
    "ignore your",
    "ignore all",
    "ignore previous",
    "ignore the rules",
    "disregard",
    "pre-approved",
    "preapproved",
    "already approved",
    "system prompt",
    "you are now",
    "as the administrator",
)
CHARGE = ("charged twice", "double charge", "overcharg", "detour", "paid extra", "charged me twice")
BAD_RIDE = ("bad experience", "rude", "dirty car", "unsafe", "terrible ride", "awful ride")
STATUS_MATCH = ("status match", "match my status", "tier match", "match my tier")
MISSING = (
    "did not get points",
    "didn't get points",
    "no points",
    "missing points",
    "not counted",
    "was my purchase counted",
    "points were not",
)


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    return any(p in text for p in phrases)


def decide(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The rules above: (tool name, arguments) for each proposal."""
    trigger = case.get("trigger") or {}
    member = case.get("member") or {}
    tier = member.get("tier", "Blue")
    kind = trigger.get("kind")
    calls: list[tuple[str, dict[str, Any]]] = []
    if kind == "support_ticket":
        text = str(trigger.get("ticket_text") or "").lower()
        if _has(text, INJECTION):
            calls.append(
                (
                    "flag_fraud",
                    {
                        "reason": "the ticket tries to instruct the agent (prompt injection); "
                        "review the account and the ticket"
                    },
                )
            )
            calls.append(
                (
                    "message_member",
                    _message(
                        "Thanks for your message. A member of our team will look into it.",
                        "acknowledge the ticket without acting on its instructions",
                    ),
                )
            )
        elif _has(text, STATUS_MATCH):
            if tier in TIER_NAMES[:-1]:
                target = TIER_NAMES[TIER_NAMES.index(tier) + 1]
                calls.append(
                    (
                        "change_tier",
                        {
                            "tier": target,
                            "reason": f"status match request ({tier} member); "
                            "check the other program's status before approving",
                        },
                    )
                )
            calls.append(
                (
                    "message_member",
                    _message(
                        "Thanks for your status match request. Our team will review it and "
                        "let you know.",
                        "acknowledge the status match request",
                    ),
                )
            )
        elif _has(text, CHARGE):
            points = GOODWILL.get(tier, 100)
            calls.append(
                (
                    "grant_points",
                    {"points": points, "reason": f"goodwill for a charge problem ({tier} member)"},
                )
            )
            calls.append(
                (
                    "message_member",
                    _message(
                        "Sorry about the trouble with your charge. We are looking into it and have "
                        "proposed goodwill points for your account.",
                        "apologise for the charge problem",
                    ),
                )
            )
        elif _has(text, BAD_RIDE):
            rewards = member.get("rewards") or []
            if rewards:
                reward = rewards[0]  # the cheapest the member's tier allows
                calls.append(
                    (
                        "redeem_reward",
                        {
                            "reward_id": reward["reward_id"],
                            "reason": f"goodwill for a bad ride: {reward['name']} ({tier} member)",
                        },
                    )
                )
            calls.append(
                (
                    "message_member",
                    _message(
                        "We are sorry your ride was not what it should be. We have passed it on "
                        "and proposed a small gift for your account.",
                        "apologise for the bad ride",
                    ),
                )
            )
        elif _has(text, MISSING):
            calls.append(
                (
                    "message_member",
                    _message(
                        "Points are credited when the trip or purchase reaches us, usually within a day. "
                        "If they are still missing after that, reply and we will check.",
                        "explain how points are credited",
                    ),
                )
            )
        else:
            calls.append(
                (
                    "message_member",
                    _message(
                        "Thanks for reaching out. A member of our team will get back to you.",
                        "acknowledge the ticket",
                    ),
                )
            )
    elif kind == "unusual_activity":
        calls.append(
            (
                "flag_fraud",
                {
                    "reason": f"{trigger.get('trips_in_window')} trips within "
                    f"{trigger.get('window_minutes')} minutes of event time "
                    f"(more than {trigger.get('limit')})"
                },
            )
        )
    elif kind == "tier_boundary":
        calls.append(
            (
                "message_member",
                _message(
                    f"You are {trigger.get('points_needed')} points away from {trigger.get('next_tier')}. "
                    "Your next ride could get you there!",
                    f"nudge: close to {trigger.get('next_tier')}",
                ),
            )
        )
    pending = member.get("pending_proposals") or []
    return [c for c in calls if not _pending(c, pending)]


def _message(text: str, reason: str) -> dict[str, Any]:
    return {"text": text, "reason": reason}


def _pending(call: tuple[str, dict[str, Any]], pending: list[dict[str, Any]]) -> bool:
    name, args = call
    for p in pending:
        if p.get("action") != name:
            continue
        if name == "flag_fraud" or name == "message_member":
            return True  # one open message or fraud case at a time is enough
        if name == "redeem_reward":  # the same reward waits already
            if args.get("reward_id") == (p.get("arguments") or {}).get("reward_id"):
                return True
            continue
        if {k: v for k, v in args.items() if k != "reason"} == p.get("arguments"):
            return True
    return False


def read_case(input: str | list[TResponseInputItem]) -> tuple[dict[str, Any], bool]:
    """The case JSON from the latest user message, and whether tools have answered since."""
    items: list[Any] = (
        [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
    )
    case: dict[str, Any] = {}
    answered = False
    for item in items:
        item = item if isinstance(item, dict) else getattr(item, "model_dump", lambda: {})()
        if item.get("role") == "user":
            text = _text_of(item.get("content"))
            start = text.find("{")
            if start >= 0:
                try:
                    case = json.loads(text[start:])
                except json.JSONDecodeError:
                    case = {}
                answered = False
        elif item.get("type") == "function_call_output":
            answered = True
    return case, answered


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


class OfflineRulesModel(Model):
    """Labelled "offline rules model" wherever a model name is shown."""

    label = OFFLINE_MODEL_LABEL

    def _respond(
        self, system_instructions: str | None, input: str | list[TResponseInputItem]
    ) -> tuple[list[TResponseOutputItem], Usage, str]:
        case, answered = read_case(input)
        digest = hashlib.sha256(
            json.dumps(case, sort_keys=True).encode() + (b"/answered" if answered else b"")
        ).hexdigest()[:16]
        output: list[TResponseOutputItem] = []
        if not answered:
            for i, (name, args) in enumerate(decide(case)):
                output.append(
                    ResponseFunctionToolCall(
                        type="function_call",
                        id=f"fc_{digest}_{i}",
                        call_id=f"call_{digest}_{i}",
                        name=name,
                        arguments=json.dumps(args),
                        status="completed",
                    )
                )
        if not output:
            words = (
                "Proposals recorded for review." if answered else "No action needed for this case."
            )
            output.append(
                ResponseOutputMessage(
                    type="message",
                    id=f"msg_{digest}",
                    role="assistant",
                    status="completed",
                    content=[ResponseOutputText(type="output_text", text=words, annotations=[])],
                )
            )
        prompt = (system_instructions or "") + json.dumps(
            input
            if isinstance(input, str)
            else [i if isinstance(i, dict) else str(i) for i in input],
            default=str,
        )
        produced = json.dumps([o.model_dump() for o in output], default=str)
        usage = Usage(
            requests=1,
            input_tokens=_tokens(prompt),
            output_tokens=_tokens(produced),
            total_tokens=_tokens(prompt) + _tokens(produced),
        )
        return output, usage, f"offline_{digest}"

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any | None = None,
    ) -> ModelResponse:
        output, usage, response_id = self._respond(system_instructions, input)
        return ModelResponse(output=output, usage=usage, response_id=response_id)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        """The whole answer as one `response.completed` event (rules don't trickle)."""
        output, usage, response_id = self._respond(system_instructions, input)
        response = Response(
            id=response_id,
            object="response",
            created_at=0,
            model=MODEL_NAME,
            output=output,
            parallel_tool_calls=True,
            tool_choice="auto",
            tools=[],
            usage=ResponseUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
                input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            ),
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )
