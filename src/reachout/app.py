"""create_app(): one process's composition of database, carriers, dialects and (optionally) the worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from reachout import monitoring
from reachout.agents.registry import AgentRegistry
from reachout.agents.service import default_registry
from reachout.api import routes as api_routes
from reachout.api import webhooks as api_webhooks
from reachout.api.routes import api_router
from reachout.carriers.base import TextCarrier
from reachout.carriers.plugin import CarrierContext, CarrierFactory
from reachout.carriers.registry import FACTORIES, CarrierRegistry, UnknownCarrier
from reachout.config import Settings
from reachout.conversations.carrier_events import ConversationCarrierEvents
from reachout.conversations.service import ConversationReader, UndeliverableGreetings
from reachout.conversations.turns import ConversationWorker, TurnPolicy
from reachout.db import migrate
from reachout.db.engine import Database, open_database, url_without_secrets
from reachout.db.group_commit import GroupCommitter
from reachout.dialects import amigo, bland_schemas, polyai
from reachout.dialects.amigo import amigo_router
from reachout.dialects.bland import bland_router
from reachout.dialects.polyai import polyai_router
from reachout.events.console import EventConsole
from reachout.events.deliverer import DeliveryPolicy, WebhookDeliverer
from reachout.kit import metrics
from reachout.kit.clock import Clock, SystemClock
from reachout.kit.docs import OpenApiDocument, answer, docs_router
from reachout.kit.http import BodyLimitMiddleware, MountGate, RequestEdge
from reachout.kit.jobs.retry import FixedSchedule, RetryStrategy
from reachout.kit.outbound import guarded_client
from reachout.kit.validation import describe
from reachout.logs import get_logger
from reachout.messaging.dispatcher import Dispatcher
from reachout.messaging.schemas import AcceptedMessage, OutboundRequest
from reachout.messaging.service import MessageReader
from reachout.outreach import service as outreach
from reachout.phones.lookup import LineTypeLookup
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.provisioning.schema import ProvisioningFile
from reachout.tenancy import service as tenancy
from reachout.tenancy.service import Directory, RateLimiter
from reachout.workers.loop import Worker
from reachout.workers.supervisor import WorkerProcess

log = get_logger("app")

# The routes that accept messages, timed from request to 201/202 (`reachout_accept_seconds{dialect}`).
ACCEPT_ROUTES = {"/v1/outbound-sms": "polyai", "/v1/sms": "amigo", "/v1/sms/": "amigo"}


class Health(BaseModel):
    """`GET /healthz`: whether the process can serve (the database answers and carries the newest schema)."""

    model_config = ConfigDict(title="Health")

    status: Literal["ok", "unavailable", "migrating"]
    reason: str | SkipJsonSchema[None] = Field(
        default=None, description="With `unavailable`: the kind of error reaching the database gave."
    )


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: answer("Ready.", Health, {"status": "ok"}),
    503: answer(
        "Not ready: the database does not answer, or its schema is not the newest yet.",
        Health,
        {"status": "unavailable", "reason": "ConnectionRefusedError"},
    ),
}


@dataclass
class Runtime:
    """The long-lived parts of one process, shared by its routes, its worker and its tests."""

    settings: Settings
    clock: Clock
    database: Database
    directory: Directory
    carriers: CarrierRegistry
    worker: Worker
    first_messages: GroupCommitter[OutboundRequest, AcceptedMessage]
    lookup: LineTypeLookup
    events: ConversationCarrierEvents
    webhooks: WebhookDeliverer
    # Where committed work is announced to the runner it is for (set at start-up).
    wake_worker: Callable[[str], None] = lambda _runner: None

    async def accept_first_message(self, request: OutboundRequest) -> AcceptedMessage:
        """Durably accept a first message (a greeting, or a send through a use case), then nudge the
        dispatcher."""
        accepted = await self.first_messages.submit(request)
        self.wake_worker(Dispatcher.name)
        self.wake_worker(WebhookDeliverer.name)  # its events may be for an endpoint
        return accepted

    def carrier(self, kind: str) -> TextCarrier | None:
        """The text port of a configured carrier."""
        plugin = self.carriers.plugin(kind)
        return None if plugin is None else plugin.text

    async def close(self) -> None:
        """Finish what is in flight (accepts, hand-offs) and let go of every connection."""
        await self.first_messages.close()
        await self.webhooks.close()
        await self.carriers.close()  # a carrier's lookup among what it closes


def worker_owner() -> str:
    """This process's name on the leases it takes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def build_runtime(
    settings: Settings,
    clock: Clock | None = None,
    agents: AgentRegistry | None = None,
    carriers: Mapping[str, CarrierFactory] = FACTORIES,
) -> Runtime:
    """Wire one process's services; nothing connects until first use. `carriers`: the carrier registry's
    factories (a test may add its own)."""
    clock = clock or SystemClock()
    agents = agents or default_registry()
    database = open_database(settings.database_url)
    _watch_pools(database)
    directory = Directory(database.read, settings.tenancy_cache_seconds)
    events = ConversationCarrierEvents(
        debounce_seconds=settings.debounce_seconds,
        auto_reply_window_seconds=settings.auto_reply_window_seconds,
    )
    registry = CarrierRegistry.build(
        CarrierContext(settings, database, clock, events, directory, provisioned_carriers(settings)), carriers
    )
    owner = worker_owner()
    dispatcher = Dispatcher(
        database,
        registry,
        clock,
        owner=owner,
        batch_size=settings.dispatch_batch_size,
        concurrency=settings.dispatch_concurrency,
        lease_seconds=settings.lease_seconds,
        retry=_retry(
            settings, settings.retry_base_seconds, settings.retry_max_attempts, settings.retry_cap_seconds
        ),
        horizon_seconds=settings.pacing_horizon_seconds,
        failures=UndeliverableGreetings(),
    )
    conversations = ConversationWorker(
        database,
        agents,
        clock,
        TurnPolicy(
            lease_seconds=settings.lease_seconds,
            agent_timeout_seconds=settings.agent_timeout_seconds,
            retry=_retry(
                settings,
                settings.agent_retry_base_seconds,
                settings.agent_max_attempts,
                settings.agent_retry_cap_seconds,
            ),
            batch_size=settings.turn_batch_size,
            concurrency=settings.turn_concurrency,
            auto_reply_window_seconds=settings.auto_reply_window_seconds,
        ),
        owner=owner,
    )
    webhooks = WebhookDeliverer(
        database,
        clock,
        guarded_client(
            allow_private=settings.webhooks_allow_private,
            timeout_seconds=settings.webhooks_timeout_seconds,
            connections=settings.webhooks_concurrency,
            headers={"user-agent": f"reachout-webhooks/{version('reachout')}"},
        ),
        DeliveryPolicy(
            timeout_seconds=settings.webhooks_timeout_seconds,
            lease_margin_seconds=settings.lease_seconds,
            disable_after_seconds=settings.webhooks_disable_after_seconds,
            batch_size=settings.webhooks_batch_size,
            concurrency=settings.webhooks_concurrency,
            endpoint_concurrency=settings.webhooks_endpoint_concurrency,
            schedule=FixedSchedule(settings.webhooks_retry_schedule_seconds),
        ),
        owner=owner,
    )
    # Turns first in a single pass (their replies then go out in the same pass); in `run`, each on its own.
    worker = Worker(
        [conversations, dispatcher, webhooks, *registry.runners()],
        poll_seconds=settings.worker_poll_seconds,
        linger_seconds=settings.worker_linger_seconds,
    )
    webhooks.on_room = lambda: worker.wake(WebhookDeliverer.name)
    limiter = RateLimiter()
    first_messages: GroupCommitter[OutboundRequest, AcceptedMessage] = GroupCommitter(
        database.write,
        lambda session, requests: outreach.accept_first_messages(session, requests, clock.now(), limiter),
        max_batch=settings.group_commit_max_batch,
    )
    return Runtime(
        settings=settings,
        clock=clock,
        database=database,
        directory=directory,
        carriers=registry,
        worker=worker,
        first_messages=first_messages,
        lookup=line_type_lookup(registry, settings),
        events=events,
        webhooks=webhooks,
    )


def _watch_pools(database: Database) -> None:
    metrics.watch_pool(database.writer_engine, "write")
    if database.reader_engine is not database.writer_engine:  # PostgreSQL reads through the one pool
        metrics.watch_pool(database.reader_engine, "read")


def _retry(settings: Settings, base: float, attempts: int, cap: float) -> RetryStrategy:
    # A cap below the first delay would refuse to start; it means "no longer than the first delay".
    return RetryStrategy(base, attempts, cap_seconds=max(cap, base), jitter=settings.retry_jitter)


def line_type_lookup(registry: CarrierRegistry, settings: Settings) -> LineTypeLookup:
    """The lookup the send gates ask about North American lines: REACHOUT_LINE_TYPE_LOOKUP's carrier's."""
    try:
        return registry.line_type_lookup(settings.line_type_lookup)
    except UnknownCarrier:
        source = settings.line_type_lookup
        account = f"a {source.title()} account (REACHOUT_{source.upper()}_*)"
        raise ValueError(f"REACHOUT_LINE_TYPE_LOOKUP={source} needs {account}") from None


def provisioned_carriers(settings: Settings) -> dict[str, dict[str, Any]]:
    """The provisioning file's `carriers:` section, by kind (the CLI has already validated the file)."""
    if settings.config is None:
        return {}
    spec = loader.load(settings.config).carriers
    return {kind: dict(credentials) for kind, credentials in spec if credentials is not None}


async def prepare_database(runtime: Runtime) -> ProvisioningFile | None:
    """Migrate to the newest schema and apply the provisioning file, if any; returns what it applied."""
    await asyncio.to_thread(migrate.upgrade, runtime.settings.database_url)
    document = None
    if runtime.settings.config is not None:
        document = loader.load(runtime.settings.config)
        async with runtime.database.write.begin() as session:
            applied = await provisioning.apply(session, document, runtime.clock.now())
        runtime.directory.forget()
        log.info(
            "provisioning applied",
            file=str(runtime.settings.config),
            projects=applied.projects,
            numbers=applied.numbers,
        )
    return document


async def warn_about_weak_keys(runtime: Runtime, host: str, document: ProvisioningFile | None) -> None:
    """Warn, naming the account and never the key, of each key others could guess on a reachable server
    (`document`: the provisioning file applied at start-up, whose keys are known in full)."""
    if _is_loopback(host):
        return
    provisioned = {} if document is None else {a.id: a.api_keys for a in document.accounts}
    async with runtime.database.read() as session:
        weak = await tenancy.weak_keys(session, provisioned)
    for key in weak:
        log.warning(
            "an API key others could guess is served on a reachable address; replace it",
            account=key.account_id,
            reason=key.reason,
            host=host,
        )


class WorkerHere(StrEnum):
    """Where this process's share of the worker runs, as the start-up line says it."""

    CHILD = "child process"
    INLINE = "this process"
    NONE = "not here"


async def log_startup(runtime: Runtime, *, address: str | None, worker: WorkerHere) -> None:
    """The start-up line: the address, the database (never its password), the carriers configured, what is
    provisioned, and whether the worker runs here."""
    async with runtime.database.read() as session:
        provisioned = await tenancy.provisioned(session)
    settings = runtime.settings
    log.info(
        "reachout started",
        address=address,
        public_url=settings.public_url,
        database=url_without_secrets(settings.database_url),
        carriers=runtime.carriers.kinds(),
        projects=provisioned.projects,
        numbers=provisioned.numbers,
        agents=provisioned.agents,
        worker=worker.value,
        log_level=settings.log_level,
    )


def http_address(host: str, port: int) -> str:
    """The URL a server listening on `host` and `port` is reached at."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


# Allocations (less deallocations) between collections of the youngest generation; Python's default is 700.
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Move the start-up heap out of the collector's sight, and collect the youngest generation less often.

    Modules, compiled SQL and routes never become garbage, yet every older-generation collection walked
    them: under load that was about a tenth of the process's CPU. A batch of requests in flight holds tens
    of thousands of young objects that all die together when it is answered; at 700 the collector walked
    them again and again, and the older generations after it, for about 3 % of an accept's CPU
    (bench/README.md). What a higher threshold leaves uncollected is a few thousand objects at most.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_worker: bool = True,
    agents: AgentRegistry | None = None,
    listen_host: str | None = None,
    listen_port: int | None = None,
    carriers: Mapping[str, CarrierFactory] = FACTORIES,
    worker_process: Sequence[str] | None = None,
    metrics_directory: Path | None = None,
) -> FastAPI:
    """The HTTP application; with `run_worker` it also runs the worker, in this process or, given its
    command line (`worker_process`), in a child process it starts, nudges, restarts and stops.

    `listen_host` and `listen_port` are where the server listens, when known: weak keys are warned of off
    loopback, and the start-up line names the address. `metrics_directory`: one made for this server's
    metrics, removed at shutdown once the child has stopped.
    """
    runtime = build_runtime(settings, clock, agents, carriers)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        applied = await prepare_database(runtime)
        if listen_host is not None:
            await warn_about_weak_keys(runtime, listen_host, applied)
        tune_garbage_collector()
        stop = asyncio.Event()
        worker_task, child = None, None
        if run_worker and worker_process is not None:
            child = WorkerProcess(worker_process)
            await child.start()  # after the database is prepared: the child does not prepare it again
            runtime.wake_worker = child.wake
        elif run_worker:
            worker_task = asyncio.create_task(runtime.worker.run(stop), name="worker")
            runtime.wake_worker = runtime.worker.wake
        here = WorkerHere.NONE if not run_worker else WorkerHere.INLINE if child is None else WorkerHere.CHILD
        address = (
            None if listen_host is None or listen_port is None else http_address(listen_host, listen_port)
        )
        await log_startup(runtime, address=address, worker=here)
        try:
            yield
        finally:
            stop.set()
            if child is not None:
                await child.stop()
            await runtime.close()
            if worker_task is not None:
                await worker_task
            await runtime.database.dispose()
            if (
                metrics_directory is not None
            ):  # here: uvicorn ends a server it stops on a signal by that signal
                metrics.remove_shared(metrics_directory)

    # The OpenAPI document and its pages are served by `docs_router`, which leaves out what is not served.
    app = FastAPI(
        title="reachout",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # reachout reports through /metrics and its log lines. FastAPI's own OpenTelemetry hook would look up
        # three global providers (and the environment) on every request to find none: 2-3 % of an accept.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    carrier_routes = runtime.carriers.routes()
    gated = [(routes.covers, routes.served) for routes in carrier_routes if routes.served is not None]
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_discarded_bytes=settings.max_discarded_body_bytes,
    )
    app.add_middleware(MountGate, gates=gated)
    # Added last, so it wraps the others: it answers their failures and logs what they answered.
    app.add_middleware(RequestEdge, observers=[metrics.accept_latency(ACCEPT_ROUTES)])

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe(error.errors())}, status_code=400)

    async def hidden_paths() -> Callable[[str], bool]:
        closed = [covers for covers, served in gated if not await served()]
        return lambda path: any(covers(path) for covers in closed)

    # Routes are matched in order, each request trying every route before its own: the dialects' endpoints,
    # which carry the traffic, come first, then the carriers' callbacks, then operations and the docs.
    app.include_router(polyai_router(runtime.directory, runtime.accept_first_message, runtime.lookup))
    # Bland's `/v1/sms/conversations` comes before Amigo's `/v1/sms/{message_id}`, which would match it too.
    app.include_router(bland_router(runtime.directory, ConversationReader(runtime.database.read)))
    app.include_router(api_router(runtime.directory, EventConsole(runtime.database, runtime.clock)))
    api_webhooks.register(app)
    app.include_router(
        amigo_router(
            runtime.directory,
            runtime.accept_first_message,
            MessageReader(runtime.database.read),
            runtime.lookup,
        )
    )
    for routes in carrier_routes:
        app.include_router(routes.router)

    @app.get("/healthz", tags=["operations"], responses=HEALTH_RESPONSES)
    async def healthz() -> JSONResponse:
        """200 once the database answers and carries the newest schema."""
        try:
            ready = await migrate.is_current(runtime.database.reader_engine)
        except Exception as error:  # any failure to reach the database means "not ready"
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, status_code=503)
        if not ready:
            return JSONResponse({"status": "migrating"}, status_code=503)
        return JSONResponse({"status": "ok"})

    gauges = monitoring.DatabaseGauges(runtime.database, runtime.clock, settings.metrics_cache_seconds)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus's text exposition: every process's counters and the database's gauges."""
        return Response(await monitoring.render(gauges), media_type=metrics.CONTENT_TYPE)

    schemes = {
        **polyai.SECURITY_SCHEMES,
        **amigo.SECURITY_SCHEMES,
        **bland_schemas.SECURITY_SCHEMES,
        **api_routes.SECURITY_SCHEMES,
    }
    app.include_router(docs_router(OpenApiDocument(app, hidden_paths, schemes), app.title))
    return app
