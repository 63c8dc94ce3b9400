"""Shared pieces of the command line, for every module that adds subcommands."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.connect import Target


class CliError(RuntimeError):
    """A failure with a one-line reason for the person at the terminal."""


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=None, default=str))
    else:
        print(text)


def target_of(args: argparse.Namespace) -> Target:
    from runtime.connect import resolve_target

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


def connection_argv(
    address: str, namespace: str, data_dir: Path, task_queue: str, deployment: str
) -> list[str]:
    """The options that name a target on our command line: what `target_of` reads back.
    Every child we spawn (worker, replay check) is given its target by this."""
    return [
        "--address",
        address,
        "--namespace",
        namespace,
        "--data-dir",
        str(data_dir),
        "--task-queue",
        task_queue,
        "--deployment",
        deployment,
    ]


def target_argv(target: Target, address: str | None = None) -> list[str]:
    """The inverse of `target_of`: options that reach `target` again (its TLS and API-key
    choice included), at `address` when given (the embedded server's, found at run time)."""
    from runtime.connect import server_address, tls_args

    where = address or server_address(target)
    return [
        *connection_argv(
            where, target.namespace, target.data_dir, target.task_queue, target.deployment
        ),
        *tls_args(target),
    ]
