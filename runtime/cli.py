"""`loyalty-desk`: the headless command line; without a subcommand it opens the window.

Every subcommand prints JSON with --json and exits non-zero with a one-line reason
on stderr when it fails. Heavy imports stay inside the commands so startup is fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from runtime.cliutil import CliError, emit, target_of
from runtime.connect import ConnectError

# -- server / worker ----------------------------------------------------------


def cmd_server(args: argparse.Namespace) -> int:
    from runtime.server import ServerConfig, run_foreground

    target = target_of(args)
    if target.address:
        raise CliError("`server` runs the embedded server; it takes no --address")
    config = ServerConfig(
        data_dir=target.data_dir,
        port=args.port,
        ui_port=args.ui_port,
        namespace=target.namespace,
        retention_days=args.retention_days,
        headless_ui=not args.web_ui,
    )
    return run_foreground(config, print_json=args.json)


def cmd_worker(args: argparse.Namespace) -> int:
    from runtime.connect import connect
    from runtime.worker import WorkerSettings, default_build_id, run_worker

    target = target_of(args)
    settings = WorkerSettings(
        task_queue=target.task_queue,
        deployment=target.deployment,
        build_id=args.build_id or default_build_id(),
        drill=args.drill,
        make_current_if_none=not args.no_make_current,
        data_dir=target.data_dir,
    )

    async def main() -> None:
        client = await connect(target)
        ready = asyncio.Event()

        async def say_ready() -> None:
            await ready.wait()
            label = f" (DRILL: {settings.drill})" if settings.drill else ""
            emit(
                args,
                {
                    "worker": "running",
                    "build_id": settings.build_id,
                    "drill": settings.drill,
                    "task_queue": settings.task_queue,
                    "deployment": settings.deployment,
                },
                f"worker for build {settings.build_id}{label} polling {settings.task_queue!r}",
            )
            sys.stdout.flush()

        announcer = asyncio.create_task(say_ready())
        await run_worker(client, settings, ready=ready)
        announcer.cancel()

    asyncio.run(main())
    return 0


# -- app ------------------------------------------------------------------------


def cmd_app(args: argparse.Namespace) -> int:
    from desktop.app import run_app

    return run_app(target_of(args))


def cmd_install_desktop_entry(args: argparse.Namespace) -> int:
    from runtime.desktop_entry import install

    installed = install()
    if args.json:
        print(
            json.dumps(
                {
                    "entry": str(installed.entry),
                    "metainfo": str(installed.metainfo),
                    "icons": [str(i) for i in installed.icons],
                }
            )
        )
    else:
        print(f"installed {installed.entry}")
        print(f"          {installed.metainfo}")
        print(f"          {len(installed.icons)} icons under {installed.icons[0].parents[2]}")
    return 0


class _VersionAction(argparse.Action):
    """--version: asks the bundled `temporal` only when given."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from runtime.desktop_entry import version_text

        print(version_text())
        parser.exit(0)


# -- parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS lets the options stand before or after the subcommand
    for flag, help_text in (
        (
            "--address",
            "Temporal frontend HOST:PORT (env LOYALTY_DESK_ADDRESS); default: the embedded server",
        ),
        ("--namespace", "Temporal namespace (env LOYALTY_DESK_NAMESPACE)"),
        ("--data-dir", "where the embedded server keeps its data (env LOYALTY_DESK_DATA_DIR)"),
    ):
        common.add_argument(flag, default=argparse.SUPPRESS, help=help_text)
    common.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="TLS to the cluster (env LOYALTY_DESK_TLS); on with any --tls-* option or API key",
    )
    for name, what in (
        ("ca", "CA certificate (PEM) to trust instead of the system roots"),
        ("cert", "client certificate (PEM) for mTLS"),
        ("key", "client private key (PEM) for mTLS"),
    ):
        common.add_argument(
            f"--tls-{name}",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help=f"{what} (env LOYALTY_DESK_TLS_{name.upper()})",
        )
    common.add_argument(
        "--tls-server-name",
        default=argparse.SUPPRESS,
        help="the name in the server's certificate, if not the address's host",
    )
    common.add_argument(
        "--api-key",
        action="store_true",
        default=argparse.SUPPRESS,
        help="send the API key from the keyring (`secrets set temporal`) or LOYALTY_DESK_API_KEY",
    )
    common.add_argument("--task-queue", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--deployment", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    parser = argparse.ArgumentParser(
        prog="loyalty-desk",
        parents=[common],
        description="Operator console for perpetual loyalty-member workflows on Temporal.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the app's build and the bundled Temporal server's version, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("server", parents=[common], help="run the embedded Temporal server")
    p.add_argument("--port", type=int, help="gRPC port (default: a free one)")
    p.add_argument("--ui-port", type=int, help="Web UI port (default: a free one)")
    p.add_argument("--retention-days", type=int, default=30)
    p.add_argument(
        "--web-ui",
        action="store_true",
        help="serve the Temporal Web UI on 127.0.0.1 (it asks no password: any local user "
        "can read and change workflows through it)",
    )
    p.add_argument("--headless", action="store_true", help="no Web UI (the default)")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("worker", parents=[common], help="run a worker for one build")
    p.add_argument("--build-id", help="build id (default: the package version)")
    from workflows.drill import DRILLS

    p.add_argument("--drill", choices=DRILLS, help="run with a deliberately injected bug")
    p.add_argument(
        "--no-make-current",
        action="store_true",
        help="never make this build current, even on a new deployment",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "install-desktop-entry",
        help="add Loyalty Desk to this user's applications menu (entry, icons, metainfo)",
    )
    p.set_defaults(func=cmd_install_desktop_entry)

    # each capability registers its own subcommands
    from runtime import cli_agent, cli_audit, cli_effects, cli_members, cli_rewards, cli_rollback

    cli_members.register(sub, common)
    cli_agent.register(sub, common)
    cli_rollback.register(sub, common)
    cli_audit.register(sub, common)
    cli_effects.register(sub, common)
    cli_rewards.register(sub, common)
    return parser


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in (
        ("address", None),
        ("namespace", None),
        ("data_dir", None),
        ("task_queue", None),
        ("deployment", None),
        ("tls", None),
        ("tls_ca", None),
        ("tls_cert", None),
        ("tls_key", None),
        ("tls_server_name", None),
        ("api_key", None),
        ("json", False),
    ):
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def _quiet_sdk_logs() -> None:
    """The SDK's native core logs to stdout by default, which would corrupt --json output:
    forward its warnings to Python logging, which writes to stderr."""
    import logging

    from temporalio.runtime import (
        LogForwardingConfig,
        LoggingConfig,
        Runtime,
        TelemetryConfig,
        TelemetryFilter,
    )

    logging.basicConfig(
        level=os.environ.get("LOYALTY_DESK_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    logs = LoggingConfig(TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding)
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=logs)), error_if_already_set=False
    )


def main(argv: Sequence[str] | None = None) -> int:
    # What the app writes (the database, logs, settings, rejects) is the
    # operator's alone; the child processes (server, workers) inherit this.
    os.umask(0o077)
    _quiet_sdk_logs()
    args = _defaults(build_parser().parse_args(argv))
    func = getattr(args, "func", cmd_app)
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130
    except (CliError, ConnectError, TimeoutError, ValueError) as error:
        return _fail(args, str(error))
    except Exception as error:  # an RPC failure and the like: one line, no traceback
        from temporalio.service import RPCError

        if isinstance(error, RPCError):
            return _fail(args, f"Temporal refused: {error.message}")
        if os.environ.get("LOYALTY_DESK_DEBUG"):
            raise
        return _fail(args, f"{type(error).__name__}: {error}")


def _fail(args: argparse.Namespace, reason: str) -> int:
    reason = reason.splitlines()[0] if reason else "failed"
    if args.json:
        print(json.dumps({"error": reason}))
    print(f"loyalty-desk: error: {reason}", file=sys.stderr)
    return 1


def entry() -> None:
    """Console entry point.

    Leaves with os._exit once the output is flushed: the Temporal SDK's native
    threads can crash the interpreter's finalization (seen here about one exit in
    thirty), which would turn a finished command into a signal exit code.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
