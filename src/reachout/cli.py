"""The `reachout` command: serve, worker, apply, db upgrade, phone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
import uvloop
from rich.console import Console
from rich.text import Text
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typer.core import TyperCommand, TyperGroup, TyperOption

from reachout import logs
from reachout.api.tail import follow
from reachout.app import (
    WorkerHere,
    build_runtime,
    create_app,
    log_startup,
    prepare_database,
    tune_garbage_collector,
)
from reachout.carriers.sandbox.phone import Handset
from reachout.config import Settings
from reachout.db import migrate
from reachout.db.engine import describe_database, remove_sqlite_database, sqlite_file
from reachout.kit import metrics
from reachout.kit.server import HttpLimits, bounded_protocol
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.provisioning.loader import ProvisioningError
from reachout.startup_errors import CannotListen, StartupMistake, check_database_url, describe_startup_error
from reachout.workers.supervisor import follow_the_server, worker_command

STARTUP_MISTAKE_EXIT_CODE = 2
_DATABASE_URL = "reachout.database_url"  # in the click context's meta: the database a command opens

console = Console(stderr=True)


def _show_flags_as_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            # A flag takes no value: without this the help shows a type (`<bool>`) as if it did.
            param.metavar = ""
    return params


class Commands(TyperGroup):
    """reachout's command groups: a known start-up mistake ends in a short message, not a traceback."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; report a start-up mistake in a line or two and exit with an error code."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = describe_startup_error(error, ctx.meta.get(_DATABASE_URL))
            if message is None:
                raise
            console.print(Text(message, style="red"), soft_wrap=True)
            raise typer.Exit(STARTUP_MISTAKE_EXIT_CODE) from None

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's options, flags shown as flags in the help."""
        return _show_flags_as_flags(super().get_params(ctx))


class Command(TyperCommand):
    """A reachout command: its flags shown as flags in the help."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's options, flags shown as flags in the help."""
        return _show_flags_as_flags(super().get_params(ctx))


def _settings_help() -> str:
    # Typer's help joins the lines of a paragraph: a blank line between settings keeps one a line.
    defaults = Settings.model_fields
    return "\n\n".join(
        (
            "Settings are REACHOUT_* environment variables (README.md, 'Running it for real'), among them:",
            f"REACHOUT_DATABASE_URL: the database, default {defaults['database_url'].default}"
            " (PostgreSQL: postgresql+asyncpg://USER@HOST:PORT/DATABASE).",
            "REACHOUT_CONFIG: the provisioning file applied at start-up, as --config; default none.",
            "REACHOUT_PUBLIC_URL: this server's address as carriers reach it, for their callbacks,"
            f" default {defaults['public_url'].default}.",
        )
    )


SETTINGS_HELP = _settings_help()

app = typer.Typer(
    cls=Commands,
    help="reachout: outbound SMS and voice for conversational AI agents.",
    epilog=SETTINGS_HELP,
    no_args_is_help=True,
)
db_app = typer.Typer(cls=Commands, help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
events_app = typer.Typer(cls=Commands, help="The event log.", no_args_is_help=True)
app.add_typer(events_app, name="events")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Provisioning file to apply at start-up (or REACHOUT_CONFIG).")
]


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"reachout {version('reachout')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """reachout: outbound SMS and voice for conversational AI agents."""


def _settings(ctx: typer.Context, config: Path | None) -> Settings:
    """The settings from the environment and --config; a provisioning file is read and validated first."""
    overrides = {"config": config} if config is not None else {}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    ctx.meta[_DATABASE_URL] = settings.database_url
    check_database_url(settings.database_url)
    logs.configure(settings.log_level, json=settings.log_json)
    if settings.config is not None:
        loader.load(settings.config)
    return settings


@app.command(cls=Command, epilog=SETTINGS_HELP)
def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API only; run `reachout worker` elsewhere.")
    ] = False,
    inline_worker: Annotated[
        bool,
        typer.Option(
            "--inline-worker",
            help="Run the worker in this process rather than in a child process of its own.",
        ),
    ] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Print a ready-to-paste walkthrough.")] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Delete the SQLite database (its file, -wal and -shm) first: start with no data."
        ),
    ] = False,
) -> None:
    """Run the HTTP API, and (unless --no-worker) the worker beside it, in a process of its own."""
    settings = _settings(ctx, config)
    # Listening comes first: a server that cannot listen deletes nothing and starts no worker.
    listeners = _listen(host, port)
    made = None
    try:
        if fresh:
            _start_afresh(settings.database_url)
        child = None if inline_worker else worker_command(settings.config)
        made = _share_metrics(runs_child=child is not None and not no_worker)
        application = create_app(
            settings,
            run_worker=not no_worker,
            listen_host=host,
            listen_port=port,
            worker_process=child,
            metrics_directory=made,
        )
        if demo and settings.config is not None:
            _print_walkthrough(settings, settings.config, host, port)
        _run_server(application, listeners, settings, host, port)
    finally:
        for listener in listeners:
            listener.close()
        if made is not None:  # the app removes it at shutdown; this is for a server that never started
            metrics.remove_shared(made)


def _share_metrics(*, runs_child: bool) -> Path | None:
    """Share metrics through files when a worker child runs beside the server (or PROMETHEUS_MULTIPROC_DIR is
    set); returns the temporary directory made for them, to remove at exit."""
    chosen = metrics.shared_directory()
    if chosen is None and not runs_child:
        return None
    shared = metrics.share_between_processes(chosen)
    return shared if chosen is None else None


def _listen(host: str, port: int) -> list[socket.socket]:
    """The server's listening sockets, bound on every address `host` names, as asyncio would bind them."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    listeners: list[socket.socket] = []
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, protocol, _, sockaddr in dict.fromkeys(found):
            listener = socket.socket(family, kind, protocol)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # One socket per family, as asyncio binds them: "::" would otherwise take IPv4 too, and clash.
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(sockaddr)
    except OSError as error:
        for listener in listeners:
            listener.close()
        raise CannotListen(address, error) from error
    return listeners


def _start_afresh(database_url: str) -> None:
    if sqlite_file(database_url) is None:
        database = describe_database(database_url)
        raise StartupMistake(
            f"--fresh deletes a SQLite database; REACHOUT_DATABASE_URL names {database}, which reachout never"
            " drops: drop and create it yourself"
        )
    removed = ", ".join(str(path) for path in remove_sqlite_database(database_url))
    if removed:
        console.print(f"Starting afresh: deleted {removed}.", highlight=False, markup=False, soft_wrap=True)


class _StartupFailure(logging.Filter):
    """Around the application: keeps the exception its start-up raised, for the command to raise it, where
    uvicorn would log its traceback; and drops uvicorn's own line about it."""

    def __init__(self, application: ASGIApp) -> None:
        super().__init__()
        self.application = application
        self.error: Exception | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.application(scope, receive, send)
            return
        started = False

        async def send_quietly(message: Message) -> None:
            nonlocal started
            if message["type"] == "lifespan.startup.complete":
                started = True
            elif message["type"] == "lifespan.startup.failed":
                message = {**message, "message": ""}  # a traceback, which the command decides about
            await send(message)

        try:
            await self.application(scope, receive, send_quietly)
        except Exception as error:
            if started:
                raise
            self.error = error

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop uvicorn's "Application startup failed" once the failure is kept, to be reported instead."""
        return self.error is None or not record.getMessage().startswith("Application startup failed")


def _run_server(
    application: ASGIApp, listeners: list[socket.socket], settings: Settings, host: str, port: int
) -> None:
    startup = _StartupFailure(application)
    server = uvicorn.Server(
        uvicorn.Config(
            startup,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            loop="uvloop",
            # httptools, bounded (header size and time, body time, connections): reachout.kit.server. No
            # `limit_concurrency`: uvicorn checks it only once a request's headers are in, and answers 503 to
            # every request while that many connections are open, the last one admitted included; the
            # connection limit already bounds the requests in flight (one per connection; pipelined ones
            # wait, taskless).
            http=bounded_protocol(_http_limits(settings)),
            # uvicorn annotates an int, but only hands it to loop.call_later: a fraction of a second works.
            timeout_keep_alive=settings.http_keep_alive_seconds,  # type: ignore[arg-type]
            timeout_graceful_shutdown=5,
        )
    )
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(startup)
    try:
        server.run(sockets=listeners)
    except SystemExit:
        if startup.error is None:
            raise
    finally:
        uvicorn_log.removeFilter(startup)
    if startup.error is not None:
        raise startup.error


def _http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        max_header_bytes=settings.http_max_header_bytes,
        header_timeout_seconds=settings.http_header_timeout_seconds,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        max_connections=settings.http_max_connections,
    )


@app.command(cls=Command, epilog=SETTINGS_HELP)
def worker(
    ctx: typer.Context,
    config: ConfigOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this worker's Prometheus metrics on this port.", min=0, max=65535),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address to serve the metrics on.")] = "127.0.0.1",
    prepared: Annotated[bool, typer.Option("--prepared", hidden=True)] = False,
    wake_on_stdin: Annotated[bool, typer.Option("--wake-on-stdin", hidden=True)] = False,
) -> None:
    """Run the worker only: dispatch queued messages, fire conversation jobs, make the carriers' reports."""
    settings = _settings(ctx, config)
    runtime = build_runtime(settings)
    if metrics_port is not None:  # a worker beside no API of its own: Prometheus scrapes it directly
        try:
            metrics.serve_http(metrics_host, metrics_port)
        except OSError as error:
            shown = f"[{metrics_host}]" if ":" in metrics_host else metrics_host
            raise CannotListen(f"{shown}:{metrics_port}", error, "--metrics-port") from error

    async def main() -> None:
        follower = None
        try:
            if not prepared:  # `reachout serve` prepared it before starting this worker, and said so
                await prepare_database(runtime)
                await log_startup(runtime, address=None, worker=WorkerHere.INLINE)
            tune_garbage_collector()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            if wake_on_stdin:
                follower = asyncio.create_task(follow_the_server(runtime.worker.wake, stop))
            await runtime.worker.run(stop)
        finally:
            if follower is not None:
                follower.cancel()
            await runtime.close()
            await runtime.database.dispose()

    uvloop.run(main())


@app.command(cls=Command)
def phone(
    number: Annotated[str, typer.Argument(help="The handset's number in E.164, e.g. +14155551234.")],
    server: Annotated[str, typer.Option(help="The reachout to talk to.")] = "http://127.0.0.1:8080",
    to: Annotated[
        str | None, typer.Option(help="Agent number to text (default: the last one that texted you).")
    ] = None,
) -> None:
    """A virtual handset on the sandbox: shows what NUMBER receives and texts what you type."""
    try:
        handset_number = parse_e164(number).e164
        agent_number = None if to is None else parse_e164(to).e164
    except InvalidPhoneNumber as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Handset(handset_number, server.rstrip("/"), agent_number).run())


@events_app.command("tail", cls=Command)
def events_tail(
    server: Annotated[str, typer.Option(help="The reachout to follow.")] = "http://127.0.0.1:8080",
    key: Annotated[
        str | None,
        typer.Option(envvar="REACHOUT_API_KEY", help="An API key of the account (or REACHOUT_API_KEY)."),
    ] = None,
    project: Annotated[
        list[str] | None, typer.Option(help="Only this project's events (repeatable).")
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only these types or families, e.g. message.* (repeatable)."),
    ] = None,
    raw: Annotated[bool, typer.Option("--json", help="Each event as its JSON, one per line.")] = False,
) -> None:
    """Print the account's events as they are recorded, one line each, until Ctrl-C."""
    raise typer.Exit(follow(server, key, project or (), event_type or (), raw=raw, errors=console))


@app.command("apply", cls=Command, epilog=SETTINGS_HELP)
def apply_file(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Provisioning YAML file.")]
) -> None:
    """Create or update accounts, keys, projects and numbers from a provisioning file."""
    settings = _settings(ctx, None)
    document = loader.load(file)
    runtime = build_runtime(settings)

    async def main() -> provisioning.Applied:
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
        try:
            async with runtime.database.write.begin() as session:
                return await provisioning.apply(session, document, runtime.clock.now())
        finally:
            await runtime.database.dispose()

    try:
        applied = asyncio.run(main())
    except ProvisioningError as error:
        raise ProvisioningError(f"{file}: {error}") from None
    console.print(
        f"[green]Applied {file}[/green]: {applied.accounts} accounts, {applied.projects} projects, "
        f"{applied.numbers} numbers."
    )


@db_app.command("upgrade", cls=Command, epilog=SETTINGS_HELP)
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the newest schema."""
    settings = _settings(ctx, None)
    migrate.upgrade(settings.database_url)
    console.print("[green]Database is at the newest schema.[/green]")


def _print_walkthrough(settings: Settings, config: Path, host: str, port: int) -> None:
    document = loader.load(config)
    account = next((a for a in document.accounts if a.api_keys and a.projects), None)
    if account is None:
        return
    project = next((p for p in account.projects if p.connector_id), None)
    if project is None:
        return
    base = f"http://{host}:{port}"
    out = Console()
    out.print(f"\n[bold]reachout[/bold] is starting on {base} (sandbox carrier, {config}).\n")
    out.print("Send the greeting:\n")
    out.print(
        f"curl -i -X POST {base}/v1/outbound-sms \\\n"
        f'  -H "X-PolyAi-Auth-Token: {account.api_keys[0]}" \\\n'
        f'  -H "X-TOKEN-ID: {project.connector_id}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        '  -d \'{"message": "Hi Jane, your appointment is confirmed for tomorrow at 2pm. '
        'Reply to this message if you need to reschedule.", "user_number": "+14155551234"}\'\n',
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    out.print("See what the handset received:\n")
    out.print(f"curl {base}/sandbox/handsets/+14155551234/messages\n", highlight=False, markup=False)
    out.print("Or be the phone, and answer the agent:\n")
    out.print(f".venv/bin/reachout phone +14155551234 --server {base}\n", highlight=False, markup=False)
    database = sqlite_file(settings.database_url)
    if database is not None:
        # A demo keeps its data from one run to the next: say where, and how to begin again.
        out.print(
            f"Its data stays in {database.absolute()} between runs;"
            " `make run FRESH=1` (serve --fresh) starts afresh.\n",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
