"""The `reachout` command: serve, worker, apply, db upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
import uvloop
from rich.console import Console

from reachout import logs
from reachout.app import build_runtime, create_app, prepare_database, tune_garbage_collector
from reachout.carriers.sandbox.phone import Handset
from reachout.config import Settings
from reachout.db import migrate
from reachout.kit.server import HttpLimits, bounded_protocol
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.provisioning.loader import ProvisioningError
from reachout.workers.supervisor import follow_the_server, worker_command

app = typer.Typer(help="reachout: outbound SMS and voice for conversational AI agents.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Provisioning file to apply at start-up (or REACHOUT_CONFIG).")
]


def _settings(config: Path | None) -> Settings:
    overrides = {"config": config} if config is not None else {}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logs.configure(settings.log_level, json=settings.log_json)
    if settings.config is not None:
        try:
            loader.load(settings.config)
        except ProvisioningError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
    return settings


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
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
) -> None:
    """Run the HTTP API, and (unless --no-worker) the worker beside it, in a process of its own."""
    settings = _settings(config)
    child = None if inline_worker else worker_command(settings.config)
    application = create_app(settings, run_worker=not no_worker, listen_host=host, worker_process=child)
    if demo and settings.config is not None:
        _print_walkthrough(settings.config, host, port)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        # httptools, bounded (header size and time, body time, connections): reachout.kit.server. No
        # `limit_concurrency`: uvicorn checks it only once a request's headers are in, and answers 503 to
        # every request while that many connections are open, the last one admitted included; the connection
        # limit already bounds the requests in flight (one per connection; pipelined ones wait, taskless).
        http=bounded_protocol(_http_limits(settings)),
        # uvicorn annotates an int, but only hands it to loop.call_later: a fraction of a second works.
        timeout_keep_alive=settings.http_keep_alive_seconds,  # type: ignore[arg-type]
        timeout_graceful_shutdown=5,
    )


def _http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        max_header_bytes=settings.http_max_header_bytes,
        header_timeout_seconds=settings.http_header_timeout_seconds,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        max_connections=settings.http_max_connections,
    )


@app.command()
def worker(
    config: ConfigOption = None,
    prepared: Annotated[bool, typer.Option("--prepared", hidden=True)] = False,
    wake_on_stdin: Annotated[bool, typer.Option("--wake-on-stdin", hidden=True)] = False,
) -> None:
    """Run the worker only: dispatch queued messages, fire conversation jobs, make the carriers' reports."""
    settings = _settings(config)
    runtime = build_runtime(settings)

    async def main() -> None:
        if not prepared:  # `reachout serve` prepared it before starting this worker
            await prepare_database(runtime)
        tune_garbage_collector()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        follower = None
        if wake_on_stdin:
            follower = asyncio.create_task(follow_the_server(runtime.worker.wake, stop))
        try:
            await runtime.worker.run(stop)
        finally:
            if follower is not None:
                follower.cancel()
            await runtime.close()
            await runtime.database.dispose()

    uvloop.run(main())


@app.command()
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


@app.command("apply")
def apply_file(file: Annotated[Path, typer.Argument(help="Provisioning YAML file.")]) -> None:
    """Create or update accounts, keys, projects and numbers from a provisioning file."""
    settings = _settings(None)
    try:
        document = loader.load(file)
    except ProvisioningError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
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
        console.print(f"[red]{file}: {error}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"[green]Applied {file}[/green]: {applied.accounts} accounts, {applied.projects} projects, "
        f"{applied.numbers} numbers."
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    settings = _settings(None)
    migrate.upgrade(settings.database_url)
    console.print("[green]Database is at the newest schema.[/green]")


def _print_walkthrough(config: Path, host: str, port: int) -> None:
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
