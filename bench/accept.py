"""Accepted `POST /v1/outbound-sms` per second and p99 latency: reachout side by side with a bare baseline.

For each configuration this starts a server on a free 127.0.0.1 port over a fresh database, waits until
`GET /healthz` answers 200, drives it with wrk and `bench/post.lua` (a short warm-up, then the measured
run; every request goes to a different recipient), stops the server, and checks from the database that
the number of rows committed during the measured run equals wrk's count of 2xx responses.

    baseline   bench/baseline_app.py: FastAPI + Pydantic body + one stdlib sqlite3 insert (WAL), always SQLite
    reachout   `reachout serve --config bench/provision.yaml`, on SQLite or PostgreSQL: API only
               (`--no-worker`, the headline figure), with its worker in a child process (as `make run`), and
               with the worker in the same process (`--inline-worker`)

The ratio is reachout's accepted/s over the baseline's (the baseline is defined on sqlite3, so the
PostgreSQL rows are compared with the same SQLite baseline). Target: ≥ 0.5 on SQLite, API only.

`make bench` runs this file; it needs wrk (`apt-get install -y wrk`) and, for PostgreSQL, psql and a
server on 127.0.0.1:5432 that lets `postgres` in without a password. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from profile_summary import summarize as summarize_profile  # bench/ is sys.path[0] when run as a script

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
POST_LUA = BENCH / "post.lua"
PROVISION = BENCH / "provision.yaml"
API_KEY = "rk_bench_key_0123456789"  # bench/provision.yaml
CONNECTOR = "conn_bench"
RESULT_PREFIX = "BENCH_RESULT "
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
TARGET_RATIO = 0.5
ENDPOINT_TARGET = 0.8  # accepts with one webhook endpoint, against the same configuration without
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
DRAIN_S = 2.0  # wrk runs this much longer than it sends, so every request sent is answered

Backend = Literal["sqlite", "postgresql"]
App = Literal["baseline", "reachout"]


class BenchError(RuntimeError):
    """A configuration could not be measured (server did not start, wrk failed, ...)."""


# --- wrk ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    """What post.lua's done() reports, plus wrk's CPU time."""

    sent: int
    answered: int
    accepted: int  # 2xx
    refused: int  # any other status
    window_s: float  # first request sent .. last response received
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    wrk_cpu_s: float
    raw: str = field(repr=False)

    @property
    def rate(self) -> float:
        """Accepted requests per second over the send window."""
        return self.accepted / self.window_s if self.window_s > 0 else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "bench: wrk is not installed. Install it with:\n\n    sudo apt-get install -y wrk\n\n"
            "(or build it from https://github.com/wg/wrk and put it on PATH), then run `make bench` again.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return wrk


def run_wrk(
    wrk: str, url: str, *, seconds: float, connections: int, threads: int, timeout_s: float = 10.0
) -> WrkResult:
    """Send for `seconds`, then let in-flight requests finish; parse post.lua's summary line."""
    env = dict(os.environ)
    env.update(
        BENCH_API_KEY=API_KEY,
        BENCH_CONNECTOR=CONNECTOR,
        BENCH_SEND_SECONDS=f"{seconds:.3f}",
        BENCH_RESULT_PREFIX=RESULT_PREFIX,
    )
    total = max(1, round(seconds + DRAIN_S))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{total}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        "-s",
        str(POST_LUA),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        output, _ = process.communicate(timeout=total + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise BenchError(f"wrk did not finish within {total + 30} s") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise BenchError(f"wrk exited with {process.returncode}:\n{output}")
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise BenchError(f"wrk printed no {RESULT_PREFIX.strip()} line:\n{output}")
    data: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
    return WrkResult(
        sent=int(data["sent"]),
        answered=int(data["answered"]),
        accepted=int(data["accepted"]),
        refused=int(data["refused"]),
        window_s=float(data["window_s"]),
        connect_errors=int(data["connect_errors"]),
        read_errors=int(data["read_errors"]),
        write_errors=int(data["write_errors"]),
        timeouts=int(data["timeouts"]),
        p50_us=float(data["p50_us"]),
        p90_us=float(data["p90_us"]),
        p99_us=float(data["p99_us"]),
        max_us=float(data["max_us"]),
        wrk_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        raw=output,
    )


# --- servers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """A process and its descendants alive now (the server and its worker process), the root first."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop(0)
        found.append(current)
        with contextlib.suppress(OSError):
            pending += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time so far of a process and its descendants alive now."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


_PG_CLIENT = re.compile(r".*\(\d+\)|\[local\]")


def postgres_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL process serving `database` or the whole server (WAL writer,
    checkpointer, ...); backends of other databases (other people's tests) are not ours to count."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            # A backend's title is "postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE"; auxiliary
            # processes ("postgres: 15/main: walwriter") name no client.
            parts = title.split()
            client = next((i for i, p in enumerate(parts) if _PG_CLIENT.fullmatch(p)), None)
            if client is None or (database is not None and client >= 2 and parts[client - 1] == database):
                found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


@dataclass(frozen=True)
class CpuUse:
    """Cores used during a measured run: by the server, by wrk, by PostgreSQL, by anything else."""

    server: float  # over the send window
    wrk: float
    postgres: float
    other: float  # the rest of the machine: other people's work, or kernel threads
    steal: float


class CpuMeter:
    """Samples CPU counters before and after a run, so contention from other work shows up in the report."""

    def __init__(self, server_pid: int, database: str | None) -> None:
        self._pid = server_pid
        self._database = database
        self._start = time.monotonic()
        self._server = tree_cpu_seconds(server_pid)
        self._postgres = postgres_cpu(database)
        self._busy, self._steal = machine_busy_seconds()

    def stop(self, wrk_cpu_s: float, window_s: float) -> CpuUse:
        wall = time.monotonic() - self._start
        server = tree_cpu_seconds(self._pid) - self._server
        after = postgres_cpu(self._database)
        # A process that exited meanwhile is left out; one that started counts from zero.
        postgres = sum(cpu - self._postgres.get(pid, 0.0) for pid, cpu in after.items())
        busy, steal = machine_busy_seconds()
        other = (busy - self._busy) - server - postgres - wrk_cpu_s
        return CpuUse(
            server=server / window_s if window_s > 0 else 0.0,
            wrk=wrk_cpu_s / wall,
            postgres=postgres / wall,
            other=max(0.0, other / wall),
            steal=(steal - self._steal) / wall,
        )


class GroupProcess:
    """A process in its own process group, its output in a log file; stopped (group and all) on exit."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
        try:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    print(
                        f"  {self.name} ignored SIGTERM for {STOP_TIMEOUT_S:g} s; killing it", file=sys.stderr
                    )
            # Kill anything left in the group (also when the leader already exited).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        finally:
            self._log.close()


class Server(GroupProcess):
    """A server process that answers `/healthz` on 127.0.0.1:`port` once ready."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], cwd: Path, port: int) -> None:
        super().__init__(name, command, env, cwd)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} was not ready within {timeout_s:g} s:\n{self.log_tail()}")


def reachout_executable() -> Path:
    for candidate in (Path(sys.executable).parent / "reachout", ROOT / ".venv" / "bin" / "reachout"):
        if candidate.exists():
            return candidate
    raise BenchError("cannot find the `reachout` command; run `make bench` (it installs .venv)")


def clean_env() -> dict[str, str]:
    """This environment without REACHOUT_* settings, so every run uses reachout's defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REACHOUT_")}


# --- databases ----------------------------------------------------------------------------------------------


def psql(sql: str, database: str = "postgres") -> str:
    psql_bin = shutil.which("psql")
    if psql_bin is None:
        raise BenchError("psql is not installed (apt-get install -y postgresql-client)")
    connection = ["-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", database]
    result = subprocess.run(
        [psql_bin, *connection, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-t", "-A", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"psql failed ({sql}): {result.stderr.strip()}")
    return result.stdout.strip()


class Store:
    """Where one server's rows live: a fresh SQLite file or a fresh PostgreSQL database."""

    def __init__(self, backend: Backend, workdir: Path, label: str) -> None:
        self.backend = backend
        self.sqlite_path = workdir / f"{label}.db"
        self.pg_name = f"reachout_bench_{os.getpid()}_{label}".replace("-", "_")
        if backend == "postgresql":
            psql(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            psql(f'CREATE DATABASE "{self.pg_name}"')

    @property
    def url(self) -> str:
        if self.backend == "postgresql":
            return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.pg_name}"
        return f"sqlite+aiosqlite:///{self.sqlite_path}"

    def count(self, sql: str) -> int:
        if self.backend == "postgresql":
            return int(psql(sql, self.pg_name))
        with contextlib.closing(sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA busy_timeout=30000")
            return int(db.execute(sql).fetchone()[0])

    def drop(self) -> None:
        if self.backend == "postgresql":
            psql(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


# --- one measurement ----------------------------------------------------------------------------------------


WorkerMode = Literal["none", "process", "inline"]
MODES: dict[WorkerMode, tuple[str, str]] = {  # label suffix, description
    "none": ("api", "api only"),
    "process": ("worker", "api + worker process"),
    "inline": ("inline", "api + inline worker"),
}


@dataclass(frozen=True)
class Config:
    app: App
    backend: Backend
    worker: WorkerMode = "none"
    endpoint: bool = False  # one webhook endpoint configured: every event also queues a delivery

    @property
    def label(self) -> str:
        if self.app == "baseline":
            return "baseline-sqlite3"
        return f"reachout-{self.backend}-{MODES[self.worker][0]}{'-hooked' if self.endpoint else ''}"

    @property
    def mode(self) -> str:
        if self.app == "baseline":
            return "-"
        return MODES[self.worker][1] + (" + 1 endpoint" if self.endpoint else "")


@dataclass
class Measurement:
    config: Config
    run: int
    wrk: WrkResult
    committed: int  # rows committed during the measured run
    cpu: CpuUse
    profiles: tuple[Path, ...] = ()
    delivered: int | None = None  # during the window, where a worker runs

    @property
    def delivered_rate(self) -> float | None:
        if self.delivered is None or self.wrk.window_s <= 0:
            return None
        return self.delivered / self.wrk.window_s

    @property
    def rows_ok(self) -> bool:
        # When every request was answered, every committed row must have had its 2xx, and vice versa; a
        # request wrk gave up on may have committed all the same, but a 2xx without its row never passes.
        unanswered = max(0, self.wrk.sent - self.wrk.answered)
        return self.wrk.accepted <= self.committed <= self.wrk.accepted + unanswered

    @property
    def ok(self) -> bool:
        return self.rows_ok and self.wrk.refused == 0 and self.wrk.socket_errors == 0


COUNT_SQL: dict[App, str] = {
    "baseline": "SELECT count(*) FROM messages",
    "reachout": "SELECT count(*) FROM messages WHERE direction = 'outbound'",
}
# With a worker, how far it kept up: messages whose delivery the sandbox reported during the window.
DELIVERED_SQL = "SELECT count(*) FROM messages WHERE direction = 'outbound' AND delivered_at IS NOT NULL"


def start_server(config: Config, store: Store, workdir: Path) -> Server:
    port = free_port()
    env = clean_env()
    if config.app == "baseline":
        command = [
            sys.executable,
            str(BENCH / "baseline_app.py"),
            "--db",
            str(store.sqlite_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    else:
        env["REACHOUT_DATABASE_URL"] = store.url
        command = [
            str(reachout_executable()),
            "serve",
            "--config",
            str(hooked_provision(workdir) if config.endpoint else PROVISION),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if config.worker == "none":
            command.append("--no-worker")
        elif config.worker == "inline":
            command.append("--inline-worker")
    return Server(config.label, command, env, workdir, port)


# Nothing listens there, and it is loopback (refused by the SSRF guard): where a worker runs, each attempt
# fails at once and is rescheduled; the accept path writes the deliveries all the same.
ENDPOINT = {"url": "http://127.0.0.1:9/hooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def hooked_provision(workdir: Path) -> Path:
    """bench/provision.yaml with one webhook endpoint on its project."""
    text = PROVISION.read_text()
    hooked = workdir / "provision-hooked.yaml"
    webhooks = f'        webhooks: [{{url: "{ENDPOINT["url"]}", secret: {ENDPOINT["secret"]}}}]\n'
    hooked.write_text(text.replace("        numbers:\n", webhooks + "        numbers:\n", 1))
    return hooked


def measure(config: Config, run: int, args: argparse.Namespace, wrk: str, workdir: Path) -> Measurement:
    store = Store(config.backend if config.app == "reachout" else "sqlite", workdir, f"{config.label}-{run}")
    server: Server | None = None
    spies: list[subprocess.Popen[bytes]] = []
    try:
        server = start_server(config, store, workdir)
        server.wait_ready()
        url = f"{server.url}/v1/outbound-sms"
        if args.warmup > 0:
            warm = run_wrk(wrk, url, seconds=args.warmup, connections=args.connections, threads=args.threads)
            if warm.refused or warm.socket_errors:
                raise BenchError(
                    f"warm-up: {warm.refused} non-2xx, {warm.socket_errors} socket errors\n{warm.raw}\n"
                    f"{server.log_tail()}"
                )
        time.sleep(0.5)
        before = store.count(COUNT_SQL[config.app])
        with_worker = config.app == "reachout" and config.worker != "none"
        delivered_before = store.count(DELIVERED_SQL) if with_worker else 0
        profiles: list[Path] = []
        if args.profile is not None and config.app == "reachout":
            # One sampler per process: the server, and its worker process when it has one.
            for index, pid in enumerate(process_tree(server.pid)):
                role = "server" if index == 0 else f"child{index}"
                profiles.append(args.profile / f"{config.label}-run{run}-{role}.txt")
                spies.append(start_py_spy(pid, profiles[-1], args.duration))
        meter = CpuMeter(server.pid, store.pg_name if store.backend == "postgresql" else None)
        result = run_wrk(wrk, url, seconds=args.duration, connections=args.connections, threads=args.threads)
        cpu = meter.stop(result.wrk_cpu_s, result.window_s)
        for spy in spies:
            spy.wait(timeout=args.duration + 60)
        if result.answered != result.sent:
            time.sleep(1.0)  # let the unanswered requests finish before counting
        committed = store.count(COUNT_SQL[config.app]) - before
        delivered = store.count(DELIVERED_SQL) - delivered_before if with_worker else None
        if args.verbose:
            print(result.raw)
        return Measurement(config, run, result, committed, cpu, tuple(profiles), delivered)
    except BenchError:
        if server is not None:
            print(f"--- {server.name} log ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
            spy.wait()
        if server is not None:
            server.stop()
        store.drop()


NOISE_WARNING_CORES = 0.25


def measure_quietly(
    config: Config, run: int, args: argparse.Namespace, wrk: str, workdir: Path
) -> Measurement:
    """Measure; with --max-noise, redo a run during which other processes took more CPU than allowed."""
    attempts = 1 + (args.retries if args.max_noise is not None else 0)
    for attempt in range(1, attempts + 1):
        m = measure(config, run, args, wrk, workdir)
        noisy = m.cpu.other > (args.max_noise if args.max_noise is not None else NOISE_WARNING_CORES)
        if not noisy:
            return m
        if args.max_noise is not None and attempt < attempts:
            print(
                f"  {config.label} run {run}: other processes used {m.cpu.other:.2f} cores "
                f"(> --max-noise {args.max_noise:g}); discarding it and waiting {args.retry_wait:g} s",
                flush=True,
            )
            time.sleep(args.retry_wait)
            continue
        print(
            f"  warning: other processes used {m.cpu.other:.2f} cores during {config.label} run {run}; "
            "this figure is disturbed",
            flush=True,
        )
        return m
    raise AssertionError("unreachable")


# --- profiling ----------------------------------------------------------------------------------------------


PY_SPY_RATE = 100


def start_py_spy(pid: int, output: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Sample one process for `seconds` (raw collapsed stacks, per thread, busy samples only)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if shutil.which(py_spy) is None:
        raise BenchError("py-spy is not installed (.venv/bin/pip install py-spy)")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", str(PY_SPY_RATE), "--format", "raw", "--threads", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- report -------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    wrk_version = "missing"
    if shutil.which("wrk"):
        probe = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        wrk_version = (
            (probe.stdout or probe.stderr).splitlines()[0].strip() if (probe.stdout or probe.stderr) else "?"
        )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version,
    }


@dataclass(frozen=True)
class Row:
    config: Config
    runs: int
    rate: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    rows_ok: bool
    server_cores: float
    other_cores: float  # the most any run saw of CPU used by unrelated processes
    ratio: float | None
    delivered_rate: float | None  # messages the worker saw delivered per second, where one runs


def summarize(measurements: Sequence[Measurement], configs: Sequence[Config]) -> list[Row]:
    by_config: dict[Config, list[Measurement]] = {}
    for m in measurements:
        by_config.setdefault(m.config, []).append(m)
    base = by_config.get(Config("baseline", "sqlite"))
    base_rate = statistics.median(m.wrk.rate for m in base) if base else None
    rows: list[Row] = []
    for config in configs:
        ms = by_config.get(config)
        if not ms:
            continue
        rate = statistics.median(m.wrk.rate for m in ms)
        rows.append(
            Row(
                config=config,
                runs=len(ms),
                rate=rate,
                p99_ms=statistics.median(m.wrk.p99_us for m in ms) / 1000,
                non_2xx=sum(m.wrk.refused for m in ms),
                socket_errors=sum(m.wrk.socket_errors for m in ms),
                rows_ok=all(m.rows_ok for m in ms),
                server_cores=statistics.median(m.cpu.server for m in ms),
                other_cores=max(m.cpu.other for m in ms),
                ratio=rate / base_rate if base_rate else None,
                delivered_rate=None
                if ms[0].delivered_rate is None
                else statistics.median(m.delivered_rate or 0.0 for m in ms),
            )
        )
    return rows


def format_table(rows: Sequence[Row]) -> str:
    header = (
        f"{'app':<9} {'backend':<10} {'mode':<21} {'runs':>4} {'accepted/s':>10} {'p99 ms':>7} "
        f"{'non-2xx':>7} {'sock err':>8} {'rows=2xx':>8} {'srv cores':>9} {'noise':>5} {'ratio':>6} "
        f"{'delivered/s':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        delivered = f"{r.delivered_rate:,.0f}" if r.delivered_rate is not None else "-"
        lines.append(
            f"{r.config.app:<9} {r.config.backend:<10} {r.config.mode:<21} {r.runs:>4} {r.rate:>10,.0f} "
            f"{r.p99_ms:>7.1f} {r.non_2xx:>7} {r.socket_errors:>8} {'yes' if r.rows_ok else 'NO':>8} "
            f"{r.server_cores:>9.2f} {r.other_cores:>5.2f} {ratio:>6} {delivered:>11}"
        )
    return "\n".join(lines)


def describe(m: Measurement) -> str:
    w = m.wrk
    check = "ok" if m.rows_ok else "MISMATCH"
    return (
        f"  {m.config.label:<26} run {m.run}: {w.rate:>8,.0f} accepted/s  p50 {w.p50_us / 1000:6.1f} ms  "
        f"p99 {w.p99_us / 1000:6.1f} ms  max {w.max_us / 1000:7.1f} ms | sent {w.sent} 2xx {w.accepted} "
        f"non-2xx {w.refused} sock-err {w.socket_errors} | rows committed {m.committed} = 2xx {w.accepted}: "
        f"{check}{_delivered(m)} | cores: server {m.cpu.server:.2f} wrk {m.cpu.wrk:.2f} "
        f"postgres {m.cpu.postgres:.2f} other {m.cpu.other:.2f} steal {m.cpu.steal:.2f}"
    )


def _delivered(m: Measurement) -> str:
    rate = m.delivered_rate
    return "" if rate is None else f" | delivered {m.delivered} ({rate:,.0f}/s)"


# --- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Accepted POST /v1/outbound-sms per second: reachout vs a FastAPI + sqlite3 baseline.",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=float, default=15.0, help="Measured seconds per run (default 15).")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="Warm-up seconds per run (default 3; 0 = none)."
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64).")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1).")
    parser.add_argument("--runs", type=int, default=2, help="Runs per configuration; the median is reported.")
    parser.add_argument(
        "--worker",
        choices=["none", "process", "inline", "all"],
        default="all",
        help="Measure reachout with no worker, with its worker process (as `make run`), with the worker in "
        "the server's process, or all three (default; API only is the headline figure).",
    )
    parser.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="Skip the baseline (no ratio)."
    )
    parser.add_argument(
        "--endpoint",
        action="store_true",
        help="Also measure each reachout configuration with one webhook endpoint configured.",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="Record each measured reachout run with py-spy (raw collapsed stacks in DIR) and summarize it. "
        "Sampling slows the server down: do not report profiled figures.",
    )
    parser.add_argument(
        "--max-noise",
        type=float,
        default=None,
        metavar="CORES",
        help="Redo a run during which unrelated processes used more than CORES cores (a shared machine); "
        "default: keep every run and warn above 0.25.",
    )
    parser.add_argument("--retries", type=int, default=3, help="Redos per run with --max-noise (default 3).")
    parser.add_argument(
        "--retry-wait", type=float, default=20.0, help="Seconds to wait before a redo (default 20)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the results to this JSON file.")
    parser.add_argument("--verbose", action="store_true", help="Print wrk's own output for every run.")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600:
        parser.error("--duration must be in (0, 600] seconds")
    if args.warmup < 0 or args.warmup > 120:
        parser.error("--warmup must be in [0, 120] seconds")
    if not 1 <= args.threads <= args.connections <= 10_000:
        parser.error("need 1 <= --threads <= --connections <= 10000")
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be in [1, 20]")
    return args


def configurations(args: argparse.Namespace) -> list[Config]:
    backends: list[Backend] = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workers: list[WorkerMode] = ["none", "process", "inline"] if args.worker == "all" else [args.worker]
    configs: list[Config] = [Config("baseline", "sqlite")] if args.baseline else []
    configs += [Config("reachout", b, w) for b in backends for w in workers]
    if args.endpoint:
        configs += [Config("reachout", b, w, endpoint=True) for b in backends for w in workers]
    return configs


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so the `finally` blocks stop the servers."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = require_wrk()
    configs = configurations(args)
    if any(c.backend == "postgresql" for c in configs):
        try:
            psql("SELECT 1")
        except (BenchError, subprocess.TimeoutExpired) as error:
            print(f"bench: PostgreSQL at {PG_HOST}:{PG_PORT} is not usable: {error}", file=sys.stderr)
            return 2
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"load: wrk -t{args.threads} -c{args.connections}, {args.warmup:g} s warm-up + {args.duration:g} s "
        f"measured per run, {args.runs} run(s) per configuration, configurations interleaved"
    )
    measurements: list[Measurement] = []
    failed = False
    with terminate_on_sigterm(), tempfile.TemporaryDirectory(prefix="reachout-bench-") as tmp:
        workdir = Path(tmp)
        for run in range(1, args.runs + 1):
            for config in configs:
                try:
                    m = measure_quietly(config, run, args, wrk, workdir)
                except BenchError as error:
                    print(f"  {config.label} run {run}: FAILED: {error}", file=sys.stderr)
                    failed = True
                    continue
                measurements.append(m)
                failed = failed or not m.ok
                print(describe(m), flush=True)
                for profile in m.profiles:
                    if profile.exists():
                        print(summarize_profile(profile, rate=PY_SPY_RATE, duration=round(args.duration)))
    rows = summarize(measurements, configs)
    print()
    print(format_table(rows))
    for r in rows:
        if r.config == Config("reachout", "sqlite", "none") and r.ratio is not None:
            verdict = "met" if r.ratio >= TARGET_RATIO else "NOT met"
            print(
                f"\ntarget: reachout (SQLite, API only) >= {TARGET_RATIO} x baseline: "
                f"{r.ratio:.2f} x -> {verdict}"
            )
    by_config = {r.config: r for r in rows}
    for r in rows:
        plain = by_config.get(Config(r.config.app, r.config.backend, r.config.worker))
        if r.config.endpoint and plain is not None and plain.rate > 0:
            share = r.rate / plain.rate
            verdict = "met" if share >= ENDPOINT_TARGET else "NOT met"
            print(
                f"target: {r.config.backend}, {r.config.mode} >= {ENDPOINT_TARGET} x without the endpoint: "
                f"{share:.2f} x -> {verdict}"
            )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "args": {k: str(v) for k, v in vars(args).items()},
            "runs": [
                {
                    "config": asdict(m.config),
                    "run": m.run,
                    "rate": m.wrk.rate,
                    "committed": m.committed,
                    "cpu_cores": asdict(m.cpu),
                    "wrk": {k: v for k, v in asdict(m.wrk).items() if k != "raw"},
                }
                for m in measurements
            ],
            "summary": [{**asdict(r), "config": asdict(r.config)} for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    if failed:
        print(
            "\nbench: some runs failed or had non-2xx responses / row mismatches (see above)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
