"""The `secrets` and `model` subcommands: the model provider's key in the OS keyring and
the model settings, each change audited (registered by runtime/cli_agent.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime.cliutil import CliError, emit, target_of


def _configured_endpoint(args: argparse.Namespace) -> str | None:
    """The base_url of the settings file (None: OpenAI's own, or no usable settings)."""
    if args.name != "openai":
        return None
    from runtime import agent_config

    try:
        return agent_config.load(target_of(args).data_dir).base_url
    except (agent_config.SettingsError, ValueError):
        return None


def _audit_secret(args: argparse.Namespace, action: str, outcome: str) -> None:
    """The change goes to the audit log, by name only; when the log can't be reached the
    change stands and the command says it was not recorded."""
    from runtime import audit

    target = target_of(args)
    problem = audit.record_offline(
        target,
        lambda client: audit.record_secret(
            client, target, args.name, action, outcome=outcome, reason=args.reason or ""
        ),
    )
    if problem:
        print(f"warning: not recorded in the audit log: {problem}", file=sys.stderr)


def secrets_command(args: argparse.Namespace) -> int:
    from runtime import secrets

    try:
        if args.secrets_command == "set":
            if sys.stdin.isatty():
                print(f"paste the {args.name} key, then Enter:", file=sys.stderr)
                value = sys.stdin.readline()
            else:
                value = sys.stdin.read()
            endpoint = args.endpoint or _configured_endpoint(args)
            backend = secrets.set_secret(args.name, value, endpoint=endpoint)
            bound = secrets.bound_origin(args.name)
            _audit_secret(args, "set", f"stored in {backend}" + (f" for {bound}" if bound else ""))
            emit(
                args,
                {
                    "name": args.name,
                    "stored": True,
                    "backend": backend,
                    "service": secrets.service(),
                    "for": bound,
                },
                f"stored the {args.name} key in {backend}"
                + (f", to be sent to {bound} only" if bound else ""),
            )
            return 0
        if args.secrets_command == "delete":
            removed = secrets.delete_secret(args.name)
            _audit_secret(args, "delete", "deleted" if removed else "none was stored")
            emit(
                args,
                {"name": args.name, "deleted": removed},
                f"deleted the {args.name} key" if removed else f"no {args.name} key was stored",
            )
            return 0
        status = secrets.status(args.name)
        emit(args, status.as_json(), status.message)
        return 0
    except secrets.SecretsError as error:
        raise CliError(str(error)) from None


# -- model ------------------------------------------------------------------------


def _audit_settings(
    args: argparse.Namespace, target: Any, before: dict[str, Any], after: dict[str, Any]
) -> None:
    from runtime import audit

    names = audit.changed_names(before, after, "model.")
    if not names:
        return
    problem = audit.record_offline(
        target,
        lambda client: audit.record_settings(
            client, target, "model", names, outcome="saved", reason=args.reason or ""
        ),
    )
    if problem:
        print(f"warning: not recorded in the audit log: {problem}", file=sys.stderr)


def model_command(args: argparse.Namespace) -> int:
    from runtime import agent_config, secrets

    target = target_of(args)
    try:
        raw = agent_config.load_raw(target.data_dir)
        if args.model_command == "set":
            model = dict(raw.get("model") or {})
            for key in agent_config.MODEL_KEYS:
                value = getattr(args, key, None)
                if value is not None:
                    model[key] = value
            if args.provider == "offline":
                model = {"provider": "offline"}
            before = dict(raw.get("model") or {})
            raw["model"] = model
            agent_config.save(target.data_dir, raw)
            _audit_settings(args, target, before, model)
        config = agent_config.model_config(raw)
    except agent_config.SettingsError as error:
        raise CliError(str(error)) from None
    data: dict[str, Any] = {
        "provider": config.provider,
        "model": config.model,
        "label": config.label,
        "base_url": config.base_url,
        "api": config.api,
        "input_usd_per_mtok": config.input_usd_per_mtok,
        "output_usd_per_mtok": config.output_usd_per_mtok,
        "settings_file": str(agent_config.settings_path(target.data_dir)),
    }
    text = [f"model: {config.label}", f"settings: {data['settings_file']}"]
    ignored = agent_config.ignored_agent_section(config)
    if ignored:
        data["ignored_agent_section"] = config.policy
        text.append(f"warning: {ignored}")
    if config.provider != "offline":
        status = secrets.status("openai")
        data["key"] = {"stored": status.stored, "backend": status.backend}
        text.append(status.message)
    text.append("workers read this file when they start: restart them to apply a change")
    emit(args, data, "\n".join(text))
    return 0


# -- parser -------------------------------------------------------------------------
