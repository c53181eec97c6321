"""Sustained hand-off rate of the dispatcher to the sandbox carrier: reachout side by side with a bare relay.

Each run starts from a copy of one template database (migrated, provisioned with unpaced sandbox numbers,
and holding `--messages` queued greetings written by reachout's own accept path), so every configuration
starts from the same outbox. The bench holds an EXCLUSIVE lock on `messages` while the worker processes
start, so none of them claims anything before all of them are blocked on their first claim; it then
releases the lock and times the backlog's drain.

    reachout   `reachout worker --config FILE`, 1 or 3 processes, with the sandbox's status reports
               either live (the default delays, applied by the same workers) or deferred past the run
    baseline   a plain asyncpg outbox relay per process (`relay` below): lease a batch with
               UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING, insert each
               message into a sink table (its carrier), mark the batch `sending`; three commits a batch

The rate is taken from the messages' own `handed_off_at`, between the 10 % and 90 % points of the
backlog, so start-up and the last partial batches do not count. At the end every message must have been
handed to the carrier exactly once (carrier rows = messages, no duplicates); otherwise the exit status is 1.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import uvloop
import yaml

# bench/ is sys.path[0] when run as a script.
from accept import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    PY_SPY_RATE,
    BenchError,
    GroupProcess,
    clean_env,
    cpu_seconds,
    machine_busy_seconds,
    postgres_cpu,
    psql,
    reachout_executable,
    terminate_on_sigterm,
)
from profile_summary import summarize as summarize_profile

from reachout.db import migrate
from reachout.db.engine import open_database
from reachout.errors import ReachoutError
from reachout.kit.clock import SystemClock
from reachout.outreach import service as outreach
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.tenancy import service as tenancy

PROJECT = "bench"
SENDERS = 8
BODY = (
    "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
    "Reply to this message if you need to reschedule."
)  # one GSM-7 segment
FILL_BATCH = 500
TARGET_RATE = 1000.0
WINDOW = (0.10, 0.90)  # the steady part of the drain, as fractions of the backlog
GATE_TIMEOUT_S = 120.0
REPORTS_TIMEOUT_S = 120.0
DEFERRED_REPORT_S = 3600.0  # far past the end of any run
LIVE_SENT_AFTER_S = 0.05  # reachout's defaults (config.py)
LIVE_DELIVERED_AFTER_S = 0.25
NOISE_WARNING_CORES = 0.25
# How often the bench counts what is left: each count is a sequential scan of `messages`, which the
# PostgreSQL cores include. Timings come from the rows themselves, so this adds no error to the rates.
POLL_S = 0.5
SINK = "bench_carrier_sink"

App = Literal["baseline", "reachout"]
Reports = Literal["live", "deferred", "-"]


# --- the baseline relay (runs in its own process: `dispatch.py relay DSN`) ----------------------------------

LEASE_SQL = """
UPDATE messages SET lease_owner = $1, lease_expires_at = $2, next_attempt_at = $2, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM messages
    WHERE status = 'queued' AND direction = 'outbound' AND next_attempt_at <= $3
    ORDER BY priority, next_attempt_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
RETURNING id, from_number, to_number, body
"""
SINK_SQL = (
    f"INSERT INTO {SINK} (message_id, from_number, to_number, body, sent_by) VALUES ($1, $2, $3, $4, $5)"
)
DONE_SQL = """
UPDATE messages SET status = 'sending', carrier = 'sink', handed_off_at = $2, updated_at = $2,
    next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL
WHERE id = ANY($1::varchar[])
"""
# No unique key: a message handed over twice shows up as two rows.
SINK_DDL = f"""
CREATE TABLE {SINK} (
    id bigserial PRIMARY KEY, message_id varchar(36) NOT NULL, from_number varchar(40),
    to_number varchar(40) NOT NULL, body text NOT NULL, sent_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


async def relay(dsn: str, batch: int, poll: float, lease_s: float) -> None:
    """Lease, hand to the sink, mark sent; until SIGTERM. The sink is another system: its own connection."""
    db = await asyncpg.connect(dsn)
    carrier = await asyncpg.connect(dsn)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    owner = f"relay:{os.getpid()}"
    try:
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            # Autocommit: the lease commits before the carrier is called, so a crash leaves it to expire.
            rows = await db.fetch(LEASE_SQL, owner, now + dt.timedelta(seconds=lease_s), now, batch)
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)
                continue
            await carrier.executemany(
                SINK_SQL, [(r["id"], r["from_number"], r["to_number"], r["body"], owner) for r in rows]
            )  # one transaction
            await db.execute(DONE_SQL, [r["id"] for r in rows], dt.datetime.now(dt.UTC))
    finally:
        await db.close()
        await carrier.close()


def relay_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="dispatch.py relay", description="The baseline outbox relay.")
    parser.add_argument("dsn")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--lease", type=float, default=30.0)
    args = parser.parse_args(argv)
    uvloop.run(relay(args.dsn, args.batch_size, args.poll, args.lease))
    return 0


# --- the outbox: one template database, copied for every run -----------------------------------------------


def dsn(database: str) -> str:
    """asyncpg's address of a database (the baseline and the bench's own queries)."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def sqlalchemy_url(database: str) -> str:
    """REACHOUT_DATABASE_URL of a database."""
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def provisioning_document() -> dict[str, Any]:
    """One project with SENDERS unpaced sandbox numbers; a rate limit that never refuses the fill."""
    numbers = [
        {
            "number": f"+1650555{100 + i:04d}",
            "carrier": "sandbox",
            "kind": "long_code",
            "capabilities": ["sms"],
            "throughput_mps": "unlimited",
        }
        for i in range(SENDERS)
    ]
    project = {
        "id": PROJECT,
        "environment": "live",
        "rate_limit": {"requests": 100_000_000, "per_seconds": 60},
        "numbers": numbers,
    }
    return {"accounts": [{"id": "bench", "name": "Dispatch benchmark", "projects": [project]}]}


def recipient(i: int) -> str:
    """A different valid US mobile-or-fixed number for each message (+1 415 2XX XXXX)."""
    return f"+1415{200 + i // 10_000:03d}{i % 10_000:04d}"


async def fill(url: str, document: dict[str, Any], messages: int) -> None:
    """Provision and queue `messages` greetings through `accept_first_messages`, as the API's group commit
    does."""
    database = open_database(url)
    clock = SystemClock()
    try:
        async with database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "bench"), clock.now())
        async with database.read() as session:
            project = await tenancy.project(session, PROJECT)
        assert project is not None
        limiter = tenancy.RateLimiter()
        for start in range(0, messages, FILL_BATCH):
            requests = [
                await outreach.plan_greeting(project, to_number=recipient(i), body=BODY, agent_number=None)
                for i in range(start, min(messages, start + FILL_BATCH))
            ]
            async with database.write.begin() as session:
                outcomes = await outreach.accept_first_messages(session, requests, clock.now(), limiter)
            refused = [o for o in outcomes if isinstance(o, ReachoutError)]
            if refused:
                raise BenchError(f"the fill was refused: {refused[0]}")
    finally:
        await database.dispose()


def build_template(name: str, messages: int) -> float:
    """Create, migrate, provision and fill the template database; returns the fill's seconds."""
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    migrate.upgrade(sqlalchemy_url(name))
    started = time.monotonic()
    uvloop.run(fill(sqlalchemy_url(name), provisioning_document(), messages))
    elapsed = time.monotonic() - started
    psql("VACUUM ANALYZE", name)  # every copy starts with fresh statistics and no dead rows
    return elapsed


# --- one measurement ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    app: App
    workers: int
    reports: Reports = "-"

    @property
    def label(self) -> str:
        reports = "" if self.app == "baseline" else f"-{self.reports}"
        return f"{self.app}{reports}-{self.workers}p"


@dataclass(frozen=True)
class Check:
    """Did every message reach the carrier exactly once?"""

    messages: int
    handed_off: int  # messages with handed_off_at
    carrier_rows: int  # sandbox_messages (or sink) rows for outbound messages
    carrier_distinct: int  # distinct messages among them
    missing: int  # messages with no carrier row
    handoff_records: int  # the dispatcher's `sending` events (reachout), or carrier rows (baseline)
    reclaimed: int  # messages leased more than once (an expired lease; not a double by itself)
    processes: int  # worker processes that handed off at least one message

    @property
    def ok(self) -> bool:
        n = self.messages
        return (
            n > 0
            and self.handed_off == n
            and self.carrier_rows == n
            and self.carrier_distinct == n
            and self.missing == 0
            and self.handoff_records == n
        )


@dataclass(frozen=True)
class ReportLag:
    """How the sandbox's reports kept up: delivered_at - handed_off_at, and when the last one landed."""

    p50_s: float
    p99_s: float
    max_s: float
    last_after_handoff_s: float  # last delivered report after the last hand-off
    delivered: int


@dataclass(frozen=True)
class Measurement:
    config: Config
    run: int
    rate: float  # hand-offs/s between the WINDOW points of the backlog
    deciles: tuple[float, ...]  # hand-offs/s in each tenth of the backlog: does the rate hold?
    overall: float  # messages / (last hand-off - release)
    drain_s: float
    worker_cores: float
    postgres_cores: float
    other_cores: float
    check: Check
    lag: ReportLag | None
    profile: Path | None = None


def worker_env(config: Config, database: str, args: argparse.Namespace) -> dict[str, str]:
    """reachout's defaults but for the settings this bench names, so the record says what ran."""
    env = clean_env()
    report_s = DEFERRED_REPORT_S if config.reports == "deferred" else None
    env.update(
        REACHOUT_DATABASE_URL=sqlalchemy_url(database),
        REACHOUT_DISPATCH_BATCH_SIZE=str(args.batch_size),
        REACHOUT_DISPATCH_CONCURRENCY=str(args.concurrency),
        REACHOUT_WORKER_POLL_SECONDS=str(args.poll),
        REACHOUT_SANDBOX_SENT_AFTER_SECONDS=str(report_s or LIVE_SENT_AFTER_S),
        REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS=str(report_s or LIVE_DELIVERED_AFTER_S),
    )
    return env


def worker_command(config: Config, database: str, args: argparse.Namespace, document: Path) -> list[str]:
    """`reachout worker` as an operator runs it, or this file's baseline relay."""
    if config.app == "reachout":
        return [str(reachout_executable()), "worker", "--config", str(document)]
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "relay",
        dsn(database),
        f"--batch-size={args.batch_size}",
        f"--poll={args.poll}",
    ]


class Worker(GroupProcess):
    """One worker process (reachout's or the baseline relay) in its own process group."""


class CpuMeter:
    """CPU seconds used by the workers, by PostgreSQL (this database and the server's own processes), and
    by everything else on the machine but this script (other people's work) between start and stop."""

    def __init__(self, pids: Sequence[int], database: str) -> None:
        self._pids = list(pids)
        self._database = database
        self._workers = sum(cpu_seconds(p) for p in self._pids)
        self._postgres = postgres_cpu(database)
        self._busy, _ = machine_busy_seconds()
        self._own = cpu_seconds(os.getpid())

    def stop(self) -> tuple[float, float, float]:
        workers = sum(cpu_seconds(p) for p in self._pids) - self._workers
        postgres = sum(
            cpu - self._postgres.get(pid, 0.0) for pid, cpu in postgres_cpu(self._database).items()
        )
        busy, _ = machine_busy_seconds()
        own = cpu_seconds(os.getpid()) - self._own
        return workers, postgres, max(0.0, (busy - self._busy) - workers - postgres - own)


async def wait_at_gate(db: asyncpg.Connection, workers: Sequence[Worker]) -> None:
    """Until every worker is blocked on the lock the bench holds on `messages` (its first claim)."""
    deadline = time.monotonic() + GATE_TIMEOUT_S
    query = "SELECT count(DISTINCT pid) FROM pg_locks WHERE relation = 'messages'::regclass AND NOT granted"
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_alive()
        if await db.fetchval(query) >= len(workers):
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"the workers did not reach their first claim within {GATE_TIMEOUT_S:g} s")


async def wait_until_zero(
    db: asyncpg.Connection, query: str, workers: Sequence[Worker], timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while await db.fetchval(query) > 0:
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not finish within {timeout_s:g} s")
        for worker in workers:
            worker.check_alive()
        await asyncio.sleep(POLL_S)


def start_py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """Sample one worker until interrupted (raw collapsed stacks, busy samples only)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if shutil.which(py_spy) is None:
        raise BenchError("py-spy is not installed (.venv/bin/pip install py-spy)")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy, "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE), "--threads"]
    command += ["--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def drain(
    config: Config, run: int, database: str, args: argparse.Namespace, workdir: Path, document: Path
) -> Measurement:
    """Start the workers behind the gate, open it, and wait for the backlog (and its reports) to drain."""
    db = await asyncpg.connect(dsn(database))
    gate = db.transaction()
    workers: list[Worker] = []
    spy: subprocess.Popen[bytes] | None = None
    try:
        await gate.start()
        await db.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
        env = worker_env(config, database, args)
        command = worker_command(config, database, args, document)
        workers = [Worker(f"{config.label}-{run}-w{i}", command, env, workdir) for i in range(config.workers)]
        await wait_at_gate(db, workers)
        profile = (
            args.profile / f"{config.label}-run{run}.txt"
            if args.profile and config.app == "reachout"
            else None
        )
        spy = start_py_spy(workers[0].pid, profile) if profile else None
        meter = CpuMeter([w.pid for w in workers], database)
        released = time.time()
        await gate.commit()
        queued = "SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'queued'"
        await wait_until_zero(db, queued, workers, args.timeout, "the hand-offs")
        worker_cpu, postgres_cpu_s, other_cpu = meter.stop()
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            spy.wait(timeout=60)
        if config.reports == "live":
            pending = "SELECT count(*) FROM messages WHERE status IN ('sending', 'sent')"
            await wait_until_zero(db, pending, workers, REPORTS_TIMEOUT_S, "the sandbox's reports")
        times = [float(t) for t in await db.fetchval(HANDOFF_TIMES_SQL)]
        # Cores over the drain, release to last hand-off: the workers are idle (or reporting) after it.
        drained_s = max(times[-1] - released, 1e-3) if times else 1e-3
        return Measurement(
            config=config,
            run=run,
            rate=window_rate(times),
            deciles=decile_rates(times),
            overall=len(times) / drained_s,
            drain_s=drained_s,
            worker_cores=worker_cpu / drained_s,
            postgres_cores=postgres_cpu_s / drained_s,
            other_cores=other_cpu / drained_s,
            check=await check(db, config),
            lag=await report_lag(db) if config.reports == "live" else None,
            profile=profile,
        )
    except BenchError:
        for worker in workers:
            print(f"--- {worker.name} log ---\n{worker.log_tail()}", file=sys.stderr)
        raise
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        for worker in workers:
            worker.stop()
        await db.close()


HANDOFF_TIMES_SQL = """
SELECT coalesce(array_agg(extract(epoch FROM handed_off_at) ORDER BY handed_off_at), '{}')
FROM messages WHERE direction = 'outbound' AND handed_off_at IS NOT NULL
"""


def decile_rates(times: Sequence[float]) -> tuple[float, ...]:
    """Hand-offs per second within each tenth of the backlog, first to last."""
    if len(times) < 100:
        return ()
    bounds = [round(i * (len(times) - 1) / 10) for i in range(11)]
    spans = [(times[b] - times[a], b - a) for a, b in itertools.pairwise(bounds)]
    return tuple(n / span if span > 0 else 0.0 for span, n in spans)


def window_rate(times: Sequence[float]) -> float:
    """Hand-offs per second between the WINDOW points of the backlog."""
    if len(times) < 10:
        return 0.0
    first, last = (round(f * (len(times) - 1)) for f in WINDOW)
    span = times[last] - times[first]
    return (last - first) / span if span > 0 else 0.0


async def check(db: asyncpg.Connection, config: Config) -> Check:
    """Count messages against what the carrier (the sandbox's table, or the sink) holds."""
    if config.app == "reachout":
        table, key = "sandbox_messages", "idempotency_key"  # a send's key is its message id
        handoffs = "events WHERE source = 'dispatcher' AND type = 'message.sending'"
        records, processes = (
            f"SELECT count(*) FROM {handoffs}",
            f"SELECT count(DISTINCT details->>'worker') FROM {handoffs}",
        )
    else:
        table, key = SINK, "message_id"
        records, processes = f"SELECT count(*) FROM {SINK}", f"SELECT count(DISTINCT sent_by) FROM {SINK}"
    row = await db.fetchrow(
        f"""
        SELECT
            (SELECT count(*) FROM messages WHERE direction = 'outbound') AS messages,
            (SELECT count(handed_off_at) FROM messages WHERE direction = 'outbound') AS handed_off,
            (SELECT count({key}) FROM {table}) AS carrier_rows,
            (SELECT count(DISTINCT {key}) FROM {table}) AS carrier_distinct,
            (SELECT count(*) FROM messages m WHERE m.direction = 'outbound'
                AND NOT EXISTS (SELECT 1 FROM {table} c WHERE c.{key} = m.id)) AS missing,
            ({records}) AS handoff_records,
            (SELECT count(*) FROM messages WHERE direction = 'outbound' AND attempts > 1) AS reclaimed,
            ({processes}) AS processes
        """
    )
    return Check(**dict(row))


async def report_lag(db: asyncpg.Connection) -> ReportLag:
    row = await db.fetchrow(
        """
        WITH lag AS (
            SELECT extract(epoch FROM delivered_at - handed_off_at) AS s, delivered_at, handed_off_at
            FROM messages WHERE direction = 'outbound'
        )
        SELECT
            percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99,
            max(s) AS worst,
            extract(epoch FROM max(delivered_at) - max(handed_off_at)) AS tail,
            count(delivered_at) AS delivered
        FROM lag
        """
    )
    return ReportLag(
        p50_s=float(row["p50"] or 0),
        p99_s=float(row["p99"] or 0),
        max_s=float(row["worst"] or 0),
        last_after_handoff_s=float(row["tail"] or 0),
        delivered=int(row["delivered"]),
    )


def measure(
    config: Config, run: int, template: str, args: argparse.Namespace, workdir: Path, document: Path
) -> Measurement:
    """Copy the template, measure one configuration on the copy, drop it (unless --keep)."""
    database = f"{template}_{config.label}_{run}".replace("-", "_")
    psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
    try:
        if config.app == "baseline":
            psql(SINK_DDL, database)
        for setting in args.db_setting:
            name, _, value = setting.partition("=")
            psql(f'ALTER DATABASE "{database}" SET {name} = {value}')
        psql("CHECKPOINT")  # no run pays for the previous one's dirty pages
        return uvloop.run(drain(config, run, database, args, workdir, document))
    finally:
        if args.keep:
            print(f"  kept database {database}")
        else:
            psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# --- report -------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": psql("SHOW server_version"),
        "kernel": platform.release(),
    }


@dataclass(frozen=True)
class Row:
    config: Config
    runs: int
    rate: float
    overall: float
    worker_cores: float
    postgres_cores: float
    other_cores: float  # the most any run saw
    lag_p99_s: float | None
    tail_s: float | None
    exactly_once: bool
    reclaimed: int
    ratio: float | None


def summarize(measurements: Sequence[Measurement], configs: Sequence[Config]) -> list[Row]:
    """Medians per configuration; the ratio is against the baseline with as many processes."""
    by_config: dict[Config, list[Measurement]] = {}
    for m in measurements:
        by_config.setdefault(m.config, []).append(m)
    rows: list[Row] = []
    for config in configs:
        ms = by_config.get(config)
        if not ms:
            continue
        base = by_config.get(Config("baseline", config.workers))
        rate = statistics.median(m.rate for m in ms)
        lags = [m.lag for m in ms if m.lag is not None]
        rows.append(
            Row(
                config=config,
                runs=len(ms),
                rate=rate,
                overall=statistics.median(m.overall for m in ms),
                worker_cores=statistics.median(m.worker_cores for m in ms),
                postgres_cores=statistics.median(m.postgres_cores for m in ms),
                other_cores=max(m.other_cores for m in ms),
                lag_p99_s=statistics.median(lag.p99_s for lag in lags) if lags else None,
                tail_s=statistics.median(lag.last_after_handoff_s for lag in lags) if lags else None,
                exactly_once=all(m.check.ok for m in ms),
                reclaimed=sum(m.check.reclaimed for m in ms),
                ratio=rate / statistics.median(m.rate for m in base) if base else None,
            )
        )
    return rows


def format_table(rows: Sequence[Row]) -> str:
    header = (
        f"{'app':<9} {'procs':>5} {'reports':<8} {'runs':>4} {'handoffs/s':>10} {'overall/s':>9} "
        f"{'wrk cores':>9} {'pg cores':>8} {'noise':>5} {'lag p99 s':>9} {'tail s':>6} "
        f"{'once':>4} {'ratio':>5}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lag = f"{r.lag_p99_s:.2f}" if r.lag_p99_s is not None else "-"
        tail = f"{r.tail_s:.2f}" if r.tail_s is not None else "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        lines.append(
            f"{r.config.app:<9} {r.config.workers:>5} {r.config.reports:<8} {r.runs:>4} {r.rate:>10,.0f} "
            f"{r.overall:>9,.0f} {r.worker_cores:>9.2f} {r.postgres_cores:>8.2f} {r.other_cores:>5.2f} "
            f"{lag:>9} {tail:>6} {'yes' if r.exactly_once else 'NO':>4} {ratio:>5}"
        )
    return "\n".join(lines)


def describe(m: Measurement) -> str:
    c = m.check
    lag = (
        f" | reports: delivered {m.lag.delivered}, lag p50 {m.lag.p50_s:.2f} p99 {m.lag.p99_s:.2f} "
        f"max {m.lag.max_s:.2f} s, last {m.lag.last_after_handoff_s:.2f} s after the last hand-off"
        if m.lag is not None
        else ""
    )
    return (
        f"  {m.config.label:<22} run {m.run}: {m.rate:>7,.0f} hand-offs/s (10-90 %), {m.overall:,.0f}/s "
        f"overall, drained in {m.drain_s:.1f} s | cores: workers {m.worker_cores:.2f} postgres "
        f"{m.postgres_cores:.2f} other {m.other_cores:.2f} | messages {c.messages} handed off {c.handed_off} "
        f"carrier rows {c.carrier_rows} distinct {c.carrier_distinct} missing {c.missing} hand-off records "
        f"{c.handoff_records} re-leased {c.reclaimed} by {c.processes} processes: "
        f"{'ok' if c.ok else 'LOST OR DOUBLED'}{lag}\n"
        f"    hand-offs/s by tenth of the backlog: {' '.join(f'{r:,.0f}' for r in m.deciles)}"
    )


# --- main ---------------------------------------------------------------------------------------------------


def comma_list(kind: type[Any], choices: Sequence[Any] | None = None) -> Any:
    def parse(text: str) -> list[Any]:
        values = [kind(part) for part in text.split(",") if part]
        if not values or (choices is not None and any(v not in choices for v in values)):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {choices or kind.__name__}")
        return values

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Dispatcher hand-offs/s to the sandbox carrier: reachout vs a plain asyncpg relay."
    )
    parser.add_argument(
        "--messages", type=int, default=30_000, help="Queued messages per run (default 30000)."
    )
    parser.add_argument("--runs", type=int, default=2, help="Runs per configuration; the median is reported.")
    parser.add_argument(
        "--workers", type=comma_list(int), default=[1, 3], help="Worker process counts (default 1,3)."
    )
    parser.add_argument(
        "--reports",
        type=comma_list(str, ["live", "deferred"]),
        default=["live", "deferred"],
        help="reachout's sandbox reports: live (default delays, applied by the same workers) and/or "
        "deferred (after the run: the dispatcher alone). Default both.",
    )
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="Skip the baseline.")
    parser.add_argument("--batch-size", type=int, default=200, help="Claim size, both apps (default 200).")
    parser.add_argument("--concurrency", type=int, default=64, help="REACHOUT_DISPATCH_CONCURRENCY (64).")
    parser.add_argument("--poll", type=float, default=0.2, help="Idle poll seconds, both apps (default 0.2).")
    parser.add_argument("--timeout", type=float, default=600.0, help="Give up on a drain after this (s).")
    parser.add_argument(
        "--db-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A PostgreSQL setting for every run's database (ALTER DATABASE ... SET), for experiments such "
        "as plan_cache_mode=force_custom_plan; not for reported figures.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the databases (template and copies).")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy the first worker of each reachout run (raw stacks in DIR) and summarize it. "
        "Profiled figures are not to be reported.",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the results to this JSON file.")
    args = parser.parse_args(argv)
    if not 100 <= args.messages <= 1_000_000:
        parser.error("--messages must be in [100, 1000000]")
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be in [1, 20]")
    if any(not 1 <= w <= 16 for w in args.workers):
        parser.error("--workers must be in [1, 16]")
    if any(re.fullmatch(r"[a-z_.]+=[\w.-]+", setting) is None for setting in args.db_setting):
        parser.error("--db-setting takes NAME=VALUE, such as plan_cache_mode=force_custom_plan")
    return args


def configurations(args: argparse.Namespace) -> list[Config]:
    configs: list[Config] = []
    for workers in args.workers:
        if args.baseline:
            configs.append(Config("baseline", workers))
        configs += [Config("reachout", workers, reports) for reports in args.reports]
    return configs


def print_settings(args: argparse.Namespace, info: dict[str, str], fill_s: float) -> None:
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"outbox: {args.messages} queued greetings from {SENDERS} unpaced sandbox numbers to as many "
        f"recipients, written by send_greetings in {fill_s:.1f} s ({args.messages / fill_s:,.0f}/s)"
    )
    print(
        f"settings: batch {args.batch_size}, REACHOUT_DISPATCH_CONCURRENCY {args.concurrency}, poll "
        f"{args.poll:g} s; sandbox reports live: sent {LIVE_SENT_AFTER_S:g} s / delivered "
        f"{LIVE_DELIVERED_AFTER_S:g} s after hand-off, deferred: {DEFERRED_REPORT_S:g} s"
    )


def write_json(
    path: Path, info: dict[str, str], args: argparse.Namespace, ms: list[Measurement], rows: list[Row]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "runs": [{**asdict(m), "config": asdict(m.config), "profile": str(m.profile)} for m in ms],
        "summary": [{**asdict(r), "config": asdict(r.config)} for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2))


def verdicts(rows: Sequence[Row]) -> list[str]:
    return [
        f"target: reachout ({r.config.workers} process{'es' if r.config.workers > 1 else ''}, reports "
        f"{r.config.reports}) >= {TARGET_RATE:,.0f} hand-offs/s: {r.rate:,.0f}/s -> "
        f"{'met' if r.rate >= TARGET_RATE else 'NOT met'}"
        for r in rows
        if r.config.app == "reachout"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["relay"]:
        return relay_main(argv[1:])
    args = parse_args(argv)
    try:
        info = machine()
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"bench: PostgreSQL at {PG_HOST}:{PG_PORT} is not usable: {error}", file=sys.stderr)
        return 2
    template = f"reachout_dispatch_{os.getpid()}"
    measurements: list[Measurement] = []
    failed = False
    with terminate_on_sigterm(), tempfile.TemporaryDirectory(prefix="reachout-dispatch-") as tmp:
        workdir = Path(tmp)
        document = workdir / "provision.yaml"
        document.write_text(yaml.safe_dump(provisioning_document()))
        try:
            fill_s = build_template(template, args.messages)
            print_settings(args, info, fill_s)
            for run in range(1, args.runs + 1):
                for config in configurations(args):
                    try:
                        m = measure(config, run, template, args, workdir, document)
                    except BenchError as error:
                        print(f"  {config.label} run {run}: FAILED: {error}", file=sys.stderr)
                        failed = True
                        continue
                    measurements.append(m)
                    failed = failed or not m.check.ok
                    print(describe(m), flush=True)
                    if m.other_cores > NOISE_WARNING_CORES:
                        print(f"  warning: other processes used {m.other_cores:.2f} cores during this run")
                    if m.profile is not None and m.profile.exists():
                        print(summarize_profile(m.profile, rate=PY_SPY_RATE, duration=m.drain_s))
        finally:
            if args.keep:
                print(f"  kept the template database {template}")
            else:
                psql(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
    rows = summarize(measurements, configurations(args))
    print()
    print(format_table(rows))
    print()
    print("\n".join(verdicts(rows)))
    if args.json is not None:
        write_json(args.json, info, args, measurements, rows)
    if failed:
        print("\nbench: some runs failed or lost or doubled messages (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
