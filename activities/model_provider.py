"""Which model answers the agent's calls, and the agent settings the worker hands out.

The worker builds one `LoyaltyModelProvider` and passes it to the OpenAIAgentsPlugin
(`model_provider=`), so model calls never look for OPENAI_API_KEY in the environment:
- provider "offline" (the default): the offline rules model, no key, no network;
- provider "openai": OpenAI, or any OpenAI-compatible server at `base_url`, with the
  key from a callable the worker supplies (it reads the OS keyring). The key lives in
  this process only: never in a workflow payload, a file or a log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agents import Model, ModelProvider, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncOpenAI
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.model_endpoint import endpoint_problem
from activities.offline_model import MODEL_NAME as OFFLINE_MODEL_NAME
from activities.offline_model import OfflineRulesModel
from workflows.agent_io import AGENT_SETTINGS_ACTIVITY, AgentSettings
from workflows.agent_policy import OFFLINE_MODEL_LABEL

log = logging.getLogger(__name__)

PROVIDERS = ("offline", "openai")
APIS = ("chat_completions", "responses")


@dataclass(frozen=True)
class ModelConfig:
    provider: str = "offline"
    model: str = OFFLINE_MODEL_NAME
    base_url: str | None = None  # None: api.openai.com
    api: str = "chat_completions"
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0
    # guardrail overrides (see workflows.agent_policy.AgentPolicy)
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.provider == "offline":
            return OFFLINE_MODEL_LABEL
        host = urlsplit(self.base_url).netloc if self.base_url else "api.openai.com"
        return f"{self.model} ({host})"


class MissingKeyError(RuntimeError):
    pass


class LoyaltyModelProvider(ModelProvider):
    """The configured model for every name the workflow asks for (the workflow names none)."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        api_key: Callable[[], str | None] | None = None,
        model: Model | None = None,
    ) -> None:
        self.config = config
        self._api_key = api_key
        self._model = model  # an override, e.g. a test model
        self._client: AsyncOpenAI | None = None

    @property
    def model_override(self) -> Model | None:
        return self._model

    def get_model(self, model_name: str | None) -> Model:
        if self._model is not None:
            return self._model
        if self.config.provider == "offline":
            return OfflineRulesModel()
        client = self.openai_client()
        if self.config.api == "responses":
            return OpenAIResponsesModel(model=self.config.model, openai_client=client)
        return OpenAIChatCompletionsModel(model=self.config.model, openai_client=client)

    def openai_client(self) -> AsyncOpenAI:
        """One client per worker, built on first use with the key from the keyring."""
        if self._client is None:
            refused = endpoint_problem(self.config.base_url)
            if refused:
                raise ApplicationError(refused, type="KeyRefused", non_retryable=True)
            try:
                key = self._api_key() if self._api_key else None
            except ValueError as error:  # the key is bound to another endpoint
                raise ApplicationError(str(error), type="KeyRefused", non_retryable=True) from None
            if not key:
                # non-retryable: retrying can't make a key appear; the breaker counts it
                raise ApplicationError(
                    "no OpenAI API key in the keyring: run `loyalty-desk secrets set openai`",
                    type="MissingKey",
                    non_retryable=True,
                )
            # retries are the activity's job (its retry policy), not the client's
            self._client = AsyncOpenAI(api_key=key, base_url=self.config.base_url, max_retries=0)
        return self._client

    def settings(self) -> AgentSettings:
        label = self.config.label
        if self._model is not None:
            label = getattr(self._model, "label", type(self._model).__name__)
        return AgentSettings(
            policy=dict(self.config.policy),
            model_label=label,
            provider=self.config.provider,
            model=self.config.model,
            input_usd_per_mtok=self.config.input_usd_per_mtok,
            output_usd_per_mtok=self.config.output_usd_per_mtok,
        )


class AgentSettingsSource:
    """The activity that tells member workflows the worker's agent settings and load."""

    def __init__(
        self,
        provider: LoyaltyModelProvider,
        ingest_rate: Callable[[], float] | None = None,
        policy: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self._provider = provider
        self._ingest_rate = ingest_rate
        self._policy = policy

    @activity.defn(name=AGENT_SETTINGS_ACTIVITY)
    async def agent_settings(self) -> AgentSettings:
        """The model in use (this worker's) and the guardrails (the deployment's, from
        `policy`: never this machine's settings file, so every worker obeys the same)."""
        settings = self._provider.settings()
        if self._policy is not None:
            settings.policy = await self._policy()
        if self._ingest_rate is not None:
            settings.ingest_events_per_s = round(self._ingest_rate(), 1)
        return settings
