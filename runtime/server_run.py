"""`loyalty-desk server`: the embedded server in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from runtime.server import EmbeddedServer, ServerConfig, ServerError


def serve(config: ServerConfig, *, print_json: bool = False) -> int:
    """Run the embedded server until SIGINT or SIGTERM (the CLI's `server` command)."""
    return asyncio.run(_serve_until_signalled(config, print_json))


async def _serve_until_signalled(config: ServerConfig, print_json: bool) -> int:
    server = EmbeddedServer(config)
    done = asyncio.Event()

    def on_state_changed(state: str) -> None:
        if state in ("restarting", "failed"):
            print(f"server {state}: {server.last_error}", file=sys.stderr, flush=True)
        if state == "failed":
            done.set()

    server.on_state_changed = on_state_changed
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        try:
            await server.start()
        except ServerError as e:
            print(f"error: {e.reason} (log: {config.log_path})", file=sys.stderr)
            return 1
        if print_json:
            info = {
                "address": server.address,
                "ui_url": server.ui_url,
                "pid": server.pid,
                "namespace": config.namespace,
                "data_dir": str(config.data_dir),
            }
            print(json.dumps(info), flush=True)
        else:
            ui = f"Web UI {server.ui_url}" if server.ui_url else "Web UI disabled"
            print(
                f"Temporal dev server on {server.address} ({ui}), data in {config.data_dir}",
                flush=True,
            )
        await done.wait()
        failed = server.state == "failed"
        await server.stop()
        return 1 if failed else 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
