"""The worker: one process per build, registered as a Worker Deployment Version."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from temporalio.api.deployment.v1 import WorkerDeploymentVersion as ApiDeploymentVersion
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentVersionRequest
from temporalio.client import Client
from temporalio.common import RetryPolicy, VersioningBehavior, WorkerDeploymentVersion
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.service import RPCError
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.audit_archive import AuditArchive
from activities.decisions import decide_batch
from activities.effects import Deliverer
from activities.model_provider import AgentSettingsSource, LoyaltyModelProvider
from activities.outbox import Outbox
from activities.rollback import ROLLBACK_ACTIVITIES
from activities.rollback_pages import PAGE_ACTIVITIES
from runtime import agent_config, agents_compat, audit, deployment, secrets
from runtime.connect import default_data_dir
from runtime.guardrails import GuardrailsReader
from runtime.ingest_meter import IngestMeter, IngestMeterInterceptor
from workflows import drill
from workflows.agent import AgentTurnWorkflow
from workflows.audit import AuditWorkflow
from workflows.bulk_decision import BulkDecisionWorkflow
from workflows.effects import EffectWorkflow
from workflows.effects_config import EffectsConfigWorkflow
from workflows.guardrails import GuardrailsWorkflow
from workflows.ids import check_build_id, check_name
from workflows.member import MemberWorkflow
from workflows.rollback import RollbackWorkflow
from workflows.rollback_pages import PreviewPageWorkflow, PreviewWorkflow

log = logging.getLogger(__name__)


def default_build_id() -> str:
    return package_version("loyalty-desk")


@dataclass(frozen=True)
class WorkerSettings:
    task_queue: str
    deployment: str
    build_id: str
    drill: str | None = None
    make_current_if_none: bool = True
    # settings.json (the model) lives here; None: the default data dir
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        check_name(self.task_queue, "task queue")
        check_name(self.deployment, "deployment name")
        check_build_id(self.build_id)
        # a drill build says so in its build id (see workflows/drill.py)
        if self.drill:
            object.__setattr__(self, "build_id", drill.drill_build_id(self.build_id, self.drill))


# every model call: an activity with a timeout and a retry policy; after the last
# attempt the agent run fails and the member's circuit breaker counts it
MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)
MODEL_ACTIVITY = ModelActivityParameters(
    start_to_close_timeout=timedelta(seconds=60), retry_policy=MODEL_RETRY
)
# the offline model answers in microseconds, on this worker: a local activity spares the
# server a task round trip and six history events per call
OFFLINE_MODEL_ACTIVITY = ModelActivityParameters(
    start_to_close_timeout=timedelta(seconds=10), retry_policy=MODEL_RETRY, use_local_activity=True
)


def model_activity_for(provider: LoyaltyModelProvider) -> ModelActivityParameters:
    """Local for the offline model, a regular activity for a remote one.

    A worker restarted with the other kind while an agent run is in flight makes that
    run non-deterministic; it then ends by its run timeout and the trigger is retried.
    """
    if provider.config.provider == "offline" and provider.model_override is None:
        return OFFLINE_MODEL_ACTIVITY
    return MODEL_ACTIVITY


def workflow_classes() -> Sequence[type]:
    return [
        MemberWorkflow,
        AgentTurnWorkflow,
        RollbackWorkflow,
        AuditWorkflow,
        GuardrailsWorkflow,
        EffectWorkflow,
        EffectsConfigWorkflow,
        BulkDecisionWorkflow,
        PreviewWorkflow,
        PreviewPageWorkflow,
    ]


def activity_functions() -> Sequence[Any]:
    return [*ROLLBACK_ACTIVITIES, *PAGE_ACTIVITIES, decide_batch]


def sandbox_runner() -> SandboxedWorkflowRunner:
    # the rules are pure and shared; passing them through
    # saves re-importing them for every workflow run
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
    )


def model_provider(data_dir: Path) -> LoyaltyModelProvider:
    """The model the settings file asks for; an OpenAI key comes from the keyring, lazily."""
    config = agent_config.load(data_dir)
    ignored = agent_config.ignored_agent_section(config)
    if ignored:
        log.warning("%s", ignored)
    return LoyaltyModelProvider(config, api_key=lambda: secrets.model_key(config.base_url))


def agents_client(client: Client) -> Client:
    """The same connection with the pydantic converter that model payloads need.

    The converter is the plugin's, with a shared adapter cache (see agents_compat);
    the plugin itself goes on the worker, because given on the client it would
    insist on its own converter class.
    """
    config = client.config()
    config["plugins"] = [
        p for p in config.get("plugins", []) if not isinstance(p, OpenAIAgentsPlugin)
    ]
    config["data_converter"] = dataclasses.replace(
        client.data_converter, payload_converter_class=agents_compat.AgentsPayloadConverter
    )
    return Client(**config)


def build_worker(
    client: Client,
    settings: WorkerSettings,
    *,
    extra_workflows: Sequence[type] = (),
    provider: LoyaltyModelProvider | None = None,
    model_activity: ModelActivityParameters | None = None,
) -> Worker:
    agents_compat.install()
    data_dir = settings.data_dir or default_data_dir()
    provider = provider or model_provider(data_dir)
    log.info("agent model: %s", provider.settings().model_label)
    plugin = OpenAIAgentsPlugin(
        model_params=model_activity or model_activity_for(provider), model_provider=provider
    )
    # effects: started as workflows and delivered from here; secrets read at sending time
    outbox = Outbox(client, settings.deployment, settings.task_queue)
    deliverer = Deliverer(client, secrets.get_secret)
    meter = IngestMeter()
    return Worker(
        agents_client(client),
        task_queue=settings.task_queue,
        plugins=[plugin],
        interceptors=[IngestMeterInterceptor(meter)],
        workflows=[*workflow_classes(), *extra_workflows],
        activities=[
            *activity_functions(),
            AgentSettingsSource(
                provider, meter.rate, GuardrailsReader(client, settings.deployment).policy
            ).agent_settings,
            outbox.deliver,
            AuditArchive(audit.archive_file(data_dir)).archive,
            deliverer.destinations,
            deliverer.proposal,
            deliverer.webhook,
            deliverer.email,
        ],
        workflow_runner=sandbox_runner(),
        deployment_config=WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(
                deployment_name=settings.deployment, build_id=settings.build_id
            ),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
        ),
        max_cached_workflows=20_000,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def wait_task_queues(client: Client, settings: WorkerSettings, timeout: float = 15.0) -> None:
    """Until the version knows both of this worker's task queue types.

    A version shows up as soon as its first poller (workflow or activity) registers;
    making it current before the other one registered is refused by the server
    ("missing active task queues from the current version").
    """
    wanted = {TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY}
    request = DescribeWorkerDeploymentVersionRequest(
        namespace=client.namespace,
        deployment_version=ApiDeploymentVersion(
            deployment_name=settings.deployment, build_id=settings.build_id
        ),
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            described = await client.workflow_service.describe_worker_deployment_version(request)
            seen = {
                info.type
                for info in described.worker_deployment_version_info.task_queue_infos
                if info.name == settings.task_queue
            }
        except RPCError:
            seen = set()
        if wanted <= seen or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.1)


TRANSIENT = deployment.TRANSIENT  # a busy server's answers: retried, not fatal
ANNOUNCE_PATIENCE_S = 90.0


async def announce(client: Client, settings: WorkerSettings) -> None:
    """After the worker polls: claim current when the deployment has no current build.

    A busy server's transient refusals are retried for up to ANNOUNCE_PATIENCE_S: a
    worker that polls fine must not exit because the server was slow to answer."""
    deadline = asyncio.get_running_loop().time() + ANNOUNCE_PATIENCE_S
    while True:
        try:
            return await _announce(client, settings)
        except RPCError as error:
            if error.status not in TRANSIENT or asyncio.get_running_loop().time() > deadline:
                raise
            log.info("announcing build %s: %s; retrying", settings.build_id, error.message)
            await asyncio.sleep(1.0)


async def _announce(client: Client, settings: WorkerSettings) -> None:
    await deployment.wait_registered(client, settings.deployment, settings.build_id)
    await wait_task_queues(client, settings)
    if settings.make_current_if_none:
        made = await deployment.make_current_if_none(client, settings.deployment, settings.build_id)
        if made:
            log.info(
                "build %s is now the current version of %s", settings.build_id, settings.deployment
            )


async def run_worker(
    client: Client,
    settings: WorkerSettings,
    *,
    ready: asyncio.Event | None = None,
    extra_workflows: Sequence[type] = (),
) -> None:
    """Run until cancelled or SIGTERM/SIGINT; shuts down gracefully."""
    worker = build_worker(client, settings, extra_workflows=extra_workflows)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread: the caller cancels us instead
    async with worker:
        await announce(client, settings)
        if ready is not None:
            ready.set()
        await stop.wait()
