"""create_app(): one process's composition of database, carriers, dialects and (optionally) the worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from reachout.agents.registry import AgentRegistry
from reachout.agents.service import default_registry
from reachout.carriers.base import Carrier, CarrierKind
from reachout.carriers.registry import CarrierRegistry
from reachout.carriers.sandbox.carrier import SandboxCarrier
from reachout.carriers.sandbox.routes import SandboxExposure, SandboxGate, is_sandbox_path, sandbox_router
from reachout.carriers.sandbox.rules import SandboxLookup
from reachout.carriers.twilio.carrier import TwilioCarrier, TwilioSettings
from reachout.carriers.twilio.lookup import TwilioLookup
from reachout.carriers.twilio.webhooks import twilio_router
from reachout.config import LineTypeSource, Settings
from reachout.conversations.service import ConversationReader
from reachout.conversations.turns import ConversationWorker, TurnPolicy
from reachout.db import migrate
from reachout.db.engine import Database, open_database
from reachout.db.group_commit import GroupCommitter
from reachout.dialects.amigo import amigo_router
from reachout.dialects.bland import bland_router
from reachout.dialects.polyai import polyai_router
from reachout.kit.clock import Clock, SystemClock
from reachout.kit.docs import OpenApiDocument, docs_router
from reachout.kit.http import BodyLimitMiddleware, UnexpectedErrors
from reachout.kit.validation import describe
from reachout.logs import get_logger
from reachout.messaging import delivery
from reachout.messaging import service as messaging
from reachout.messaging.carrier_events import MessagingCarrierEvents
from reachout.messaging.dispatcher import Dispatcher
from reachout.messaging.schemas import AcceptedMessage, OutboundRequest
from reachout.messaging.service import MessageReader
from reachout.phones.lookup import LineTypeLookup
from reachout.phones.lookup_cache import CachedLookup
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.provisioning.schema import ProvisioningFile
from reachout.tenancy import service as tenancy
from reachout.tenancy.service import Directory, RateLimiter
from reachout.workers.loop import Worker

log = get_logger("app")


@dataclass
class Runtime:
    """The long-lived parts of one process, shared by its routes, its worker and its tests."""

    settings: Settings
    clock: Clock
    database: Database
    directory: Directory
    sandbox: SandboxCarrier
    twilio: TwilioCarrier | None
    worker: Worker
    greetings: GroupCommitter[OutboundRequest, AcceptedMessage]
    lookup: LineTypeLookup
    events: MessagingCarrierEvents

    async def accept_greeting(self, request: OutboundRequest) -> AcceptedMessage:
        """Durably accept a first message (a greeting, or a send through a use case), then nudge this
        process's dispatcher."""
        accepted = await self.greetings.submit(request)
        self.worker.wake()
        return accepted


def build_runtime(
    settings: Settings, clock: Clock | None = None, agents: AgentRegistry | None = None
) -> Runtime:
    """Wire one process's services; nothing connects until first use."""
    clock = clock or SystemClock()
    agents = agents or default_registry()
    database = open_database(settings.database_url)
    sandbox = SandboxCarrier(
        database.write,
        clock,
        sent_after=settings.sandbox_sent_after_seconds,
        delivered_after=settings.sandbox_delivered_after_seconds,
        without_receipts=settings.sandbox_routes_without_receipts,
    )
    twilio = twilio_carrier(settings)
    configured: dict[CarrierKind, Carrier] = {CarrierKind.SANDBOX: sandbox}
    if twilio is not None:
        configured[CarrierKind.TWILIO] = twilio
    carriers = CarrierRegistry(configured)
    dispatcher = Dispatcher(
        database,
        carriers,
        clock,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        batch_size=settings.dispatch_batch_size,
        concurrency=settings.dispatch_concurrency,
        lease_seconds=settings.lease_seconds,
        retry=delivery.RetryPolicy(settings.retry_base_seconds, settings.retry_max_attempts),
        horizon_seconds=settings.pacing_horizon_seconds,
    )
    conversations = ConversationWorker(
        database,
        agents,
        clock,
        TurnPolicy(
            lease_seconds=settings.lease_seconds,
            agent_timeout_seconds=settings.agent_timeout_seconds,
            max_attempts=settings.agent_max_attempts,
            retry_base_seconds=settings.agent_retry_base_seconds,
            auto_reply_window_seconds=settings.auto_reply_window_seconds,
        ),
    )
    events = MessagingCarrierEvents(
        debounce_seconds=settings.debounce_seconds,
        auto_reply_window_seconds=settings.auto_reply_window_seconds,
    )
    worker = Worker(
        database, dispatcher, conversations, sandbox, events, poll_seconds=settings.worker_poll_seconds
    )
    limiter = RateLimiter()
    greetings: GroupCommitter[OutboundRequest, AcceptedMessage] = GroupCommitter(
        database.write,
        lambda session, requests: messaging.send_greetings(session, requests, clock.now(), limiter),
        max_batch=settings.group_commit_max_batch,
    )
    return Runtime(
        settings=settings,
        clock=clock,
        database=database,
        directory=Directory(database.read, settings.tenancy_cache_seconds),
        sandbox=sandbox,
        twilio=twilio,
        worker=worker,
        greetings=greetings,
        lookup=line_type_lookup(settings, twilio, database, clock),
        events=events,
    )


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


def twilio_carrier(settings: Settings) -> TwilioCarrier | None:
    """The Twilio carrier, when REACHOUT_TWILIO_* (first) or the provisioning file name an account."""
    if settings.twilio_account_sid is not None and settings.twilio_auth_token is not None:
        account_sid, auth_token = settings.twilio_account_sid, settings.twilio_auth_token
        api_base_url = settings.twilio_api_base_url
        source = "settings"
    else:
        # The CLI has already validated the file; a broken one fails here as it would when applied.
        credentials = None if settings.config is None else loader.load(settings.config).carriers.twilio
        if credentials is None:
            return None
        account_sid, auth_token = credentials.account_sid, credentials.auth_token
        api_base_url = settings.twilio_api_base_url or credentials.api_base_url
        source = str(settings.config)
    log.info("Twilio carrier configured", account_sid=account_sid, source=source)
    return TwilioCarrier(
        TwilioSettings(
            account_sid=account_sid,
            auth_token=auth_token.get_secret_value(),
            public_url=settings.public_url,
            api_base_url=api_base_url,
            timeout_seconds=settings.twilio_timeout_seconds,
        )
    )


def line_type_lookup(
    settings: Settings, twilio: TwilioCarrier | None, database: Database, clock: Clock
) -> LineTypeLookup:
    """The lookup the send gates ask about North American lines: the sandbox's rules, or Twilio's (kept)."""
    if settings.line_type_lookup is LineTypeSource.SANDBOX:
        return SandboxLookup()
    if twilio is None:
        raise ValueError("REACHOUT_LINE_TYPE_LOOKUP=twilio needs a Twilio account (REACHOUT_TWILIO_*)")
    lookup = TwilioLookup(twilio.settings, lookup_base_url=settings.twilio_lookup_base_url)
    return CachedLookup(lookup, database.write, clock)


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def tune_garbage_collector() -> None:
    """Move the start-up heap out of the collector's sight.

    Modules, compiled SQL and routes never become garbage, yet every older-generation collection walked
    them: under load that was about a tenth of the process's CPU (bench/README.md).
    """
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_worker: bool = True,
    agents: AgentRegistry | None = None,
    listen_host: str | None = None,
) -> FastAPI:
    """The HTTP application; with `run_worker` it also dispatches and reports in the same process.

    `listen_host` is the address the server listens on, when known: weak keys are warned of off loopback.
    """
    runtime = build_runtime(settings, clock, agents)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        applied = await prepare_database(runtime)
        if listen_host is not None:
            await warn_about_weak_keys(runtime, listen_host, applied)
        tune_garbage_collector()
        stop = asyncio.Event()
        worker_task = asyncio.create_task(runtime.worker.run(stop), name="worker") if run_worker else None
        try:
            yield
        finally:
            stop.set()
            await runtime.greetings.close()
            await runtime.sandbox.close()
            if runtime.twilio is not None:
                await runtime.twilio.close()
            await runtime.lookup.close()
            if worker_task is not None:
                await worker_task
            await runtime.database.dispose()

    # The OpenAPI document and its pages are served by `docs_router`, which leaves out what is not served.
    app = FastAPI(
        title="reachout", version="0.1.0", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.runtime = runtime
    exposure = SandboxExposure(settings.sandbox_routes, runtime.directory.carrier_in_use)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_discarded_bytes=settings.max_discarded_body_bytes,
    )
    app.add_middleware(SandboxGate, exposure=exposure)
    app.add_middleware(UnexpectedErrors)  # added last, so it wraps the others

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe(error.errors())}, status_code=400)

    async def hidden_paths() -> Callable[[str], bool]:
        served = await exposure.served()
        return lambda path: not served and is_sandbox_path(path)

    app.include_router(docs_router(OpenApiDocument(app, hidden_paths), app.title))

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """200 once the database answers and carries the newest schema."""
        try:
            ready = await migrate.is_current(runtime.database.reader_engine)
        except Exception as error:  # any failure to reach the database means "not ready"
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, status_code=503)
        if not ready:
            return JSONResponse({"status": "migrating"}, status_code=503)
        return JSONResponse({"status": "ok"})

    if runtime.twilio is not None:
        # Webhooks are signed with the token of the account the carrier sends through, wherever it came from.
        app.include_router(
            twilio_router(
                runtime.database,
                runtime.events,
                runtime.clock,
                auth_token=runtime.twilio.settings.auth_token,
                public_url=runtime.twilio.settings.public_url,
            )
        )
    app.include_router(polyai_router(runtime.directory, runtime.accept_greeting, runtime.lookup))
    # Bland's `/v1/sms/conversations` comes before Amigo's `/v1/sms/{message_id}`, which would match it too.
    app.include_router(bland_router(runtime.directory, ConversationReader(runtime.database.read)))
    app.include_router(
        amigo_router(
            runtime.directory, runtime.accept_greeting, MessageReader(runtime.database.read), runtime.lookup
        )
    )
    app.include_router(
        sandbox_router(
            runtime.database,
            runtime.sandbox,
            runtime.events,
            runtime.directory.carrier_of_number,
            runtime.directory.carriers_beside,
        )
    )
    return app
