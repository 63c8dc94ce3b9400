"""Shared pieces of the command line, for every module that adds subcommands."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from runtime.connect import Target, resolve_target


class CliError(RuntimeError):
    """A failure with a one-line reason for the person at the terminal."""


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=None, default=str))
    else:
        print(text)


def target_of(args: argparse.Namespace) -> Target:
    return resolve_target(
        args.address,
        args.namespace,
        args.data_dir,
        task_queue=getattr(args, "task_queue", None),
        deployment=getattr(args, "deployment", None),
        tls=getattr(args, "tls", None),
        tls_ca=getattr(args, "tls_ca", None),
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
        tls_server_name=getattr(args, "tls_server_name", None),
        api_key=getattr(args, "api_key", None),
    )


def async_command(
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    """An argparse handler that runs `command` on a fresh event loop."""

    def run(args: argparse.Namespace) -> int:
        return asyncio.run(command(args))

    return run
