"""The agent's settings file, `DATA_DIR/settings.json`: model provider and guardrails.

    {"model": {"provider": "openai", "model": "gpt-4o-mini",
               "base_url": "http://127.0.0.1:8000/v1", "api": "chat_completions",
               "input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.6},
     "agent": {"max_calls_per_day": 20, "auto_approve_max_points": 50, ...}}

Every key is optional; without the file the worker uses the offline rules model and
the default guardrails (workflows/agent_policy.py). Never a key or token in here:
secrets go to the OS keyring (runtime/secrets.py), and `save` refuses anything that
looks like one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from activities.model_provider import APIS, PROVIDERS, ModelConfig
from runtime import temporal_settings
from workflows.agent_policy import AgentPolicy, policy_problems

SETTINGS_FILE = temporal_settings.SETTINGS_FILE
MODEL_KEYS = ("provider", "model", "base_url", "api", "input_usd_per_mtok", "output_usd_per_mtok")
_SECRET_WORDS = ("key", "token", "secret", "password")


class SettingsError(ValueError):
    """A settings file that can't be used; the message is one line."""


def settings_path(data_dir: Path) -> Path:
    return Path(data_dir) / SETTINGS_FILE


def load_raw(data_dir: Path) -> dict[str, Any]:
    try:
        return temporal_settings.read_raw(data_dir)
    except temporal_settings.TemporalSettingsError as error:
        raise SettingsError(str(error)) from None


def model_config(raw: dict[str, Any]) -> ModelConfig:
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise SettingsError('"model" must be an object')
    provider = model.get("provider", "offline")
    if provider not in PROVIDERS:
        raise SettingsError(f"unknown model provider {provider!r}; choose one of {PROVIDERS}")
    api = model.get("api", "chat_completions")
    if api not in APIS:
        raise SettingsError(f"unknown api {api!r}; choose one of {APIS}")
    agent = raw.get("agent") or {}
    if not isinstance(agent, dict):
        raise SettingsError('"agent" must be an object')
    unknown = sorted(set(agent) - set(AgentPolicy().as_dict()))
    if unknown:
        raise SettingsError(f"unknown agent settings: {', '.join(unknown)}")
    problems = policy_problems(agent)
    if problems:
        raise SettingsError("; ".join(problems))
    if provider == "offline":
        return ModelConfig(policy=dict(agent))
    return ModelConfig(
        provider=provider,
        model=str(model.get("model") or "gpt-4o-mini"),
        base_url=model.get("base_url") or None,
        api=api,
        input_usd_per_mtok=float(model.get("input_usd_per_mtok", 0.0)),
        output_usd_per_mtok=float(model.get("output_usd_per_mtok", 0.0)),
        policy=dict(agent),
    )


def load(data_dir: Path) -> ModelConfig:
    return model_config(load_raw(data_dir))


def ignored_agent_section(config: ModelConfig) -> str | None:
    """One line when the file still has an "agent" section (guardrails were set here
    before they became the deployment's): none of its values is in force."""
    if not config.policy:
        return None
    names = ", ".join(f"{k}={v}" for k, v in sorted(config.policy.items()))
    return (
        f'settings.json\'s "agent" section is ignored ({names[:200]}): the guardrails in '
        "force are the deployment's, see `loyalty-desk guardrails show`, change them with "
        "`guardrails set`"
    )


def save(data_dir: Path, raw: dict[str, Any]) -> Path:
    """Write the settings (validated first), atomically; refuses anything secret-looking."""
    model_config(raw)
    for section in raw.values():
        if isinstance(section, dict):
            for key in section:
                if any(word in key.lower() for word in _SECRET_WORDS) and key not in (
                    "max_tokens_per_day",
                ):
                    raise SettingsError(
                        f"{key!r} looks like a secret: secrets go to the keyring "
                        "(`loyalty-desk secrets set openai`), never to settings.json"
                    )
    path = settings_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
