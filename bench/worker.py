"""A worker process for benchmarks: the app's worker plus the no-op baseline workflow."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from temporalio.client import Client

from bench.noop import NoopWorkflow, PlainLogWorkflow
from runtime.worker import WorkerSettings, run_worker


async def main(args: argparse.Namespace) -> None:
    client = await Client.connect(args.address, namespace=args.namespace)
    settings = WorkerSettings(
        args.task_queue,
        args.deployment,
        args.build_id,
        drill=args.drill,
        data_dir=Path(args.data_dir),
    )
    ready = asyncio.Event()

    async def say_ready() -> None:
        await ready.wait()
        print("ready", flush=True)

    task = asyncio.create_task(say_ready())
    await run_worker(
        client, settings, ready=ready, extra_workflows=[NoopWorkflow, PlainLogWorkflow]
    )
    task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--build-id", default="bench")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--drill", default=None)
    parser.add_argument(
        "--data-dir", required=True, help="settings.json and the outbox (the bench's temp dir)"
    )
    asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    os._exit(0)
