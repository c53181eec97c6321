"""Webhook deliveries per second from one `reachout worker` to a local receiver, beside a bare httpx loop
posting the same signed payloads to the same receiver, in the same run, as many at once.

Each run: a fresh SQLite database holds N events of a project with one endpoint (bench/webhook_sink.py on
127.0.0.1, answering 204 at once), each with its pending delivery, as the accept path leaves them. The bare
loop posts N payloads signed by the same library with `--concurrency` requests in flight (the worker's
per-endpoint concurrency is set to the same); then a worker
process delivers the N deliveries, and its rate is N over the span of its attempts (first to last, from the
attempts it recorded, so its start-up is not counted). Targets: >= 500/s and >= 0.5 x the bare loop.

    .venv/bin/python bench/webhooks.py [--events 5000] [--runs 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from reachout.api.webhooks import sample
from reachout.db import migrate
from reachout.db.engine import open_database
from reachout.events import service as events
from reachout.events import signing
from reachout.events.schemas import NewEvent
from reachout.events.types import EventType
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TARGET_RATE = 500.0
TARGET_RATIO = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    sink = subprocess.Popen([sys.executable, str(BENCH / "webhook_sink.py"), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=0.2).read()
            return sink, url + "/hooks"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the sink did not start")


def payloads(n: int) -> list[tuple[str, str]]:
    """(event id, body) of n message.delivered events, as reachout would send them."""
    data = sample(EventType.MESSAGE_DELIVERED)["data"]
    now = datetime.now(UTC)
    return [(events.new_event_id(), signing.payload("message.delivered", now, data)) for _ in range(n)]


async def bare_loop(url: str, bodies: list[tuple[str, str]], concurrency: int) -> float:
    """Post every payload, signed per attempt, `concurrency` at a time; returns requests per second."""
    queue = list(reversed(bodies))
    # As many connections kept alive as requests in flight, as reachout's client keeps.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=15.0, follow_redirects=False, limits=limits) as client:

        async def lane() -> None:
            while queue:
                event_id, body = queue.pop()
                headers = signing.headers(event_id, body, [SECRET], datetime.now(UTC))
                response = await client.post(url, content=body.encode(), headers=headers)
                assert 200 <= response.status_code < 300

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


async def prepare(database_url: str, url: str, n: int) -> None:
    """A migrated database with the bench project, its endpoint, and n events with their deliveries."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    document = yaml.safe_load((BENCH / "provision.yaml").read_text())
    document["accounts"][0]["projects"][0]["webhooks"] = [{"url": url, "secret": SECRET}]
    database = open_database(database_url)
    try:
        now = datetime.now(UTC)
        async with database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "bench"), now)
        data = sample(EventType.MESSAGE_DELIVERED)["data"]
        for start in range(0, n, 500):
            batch = [
                NewEvent(EventType.MESSAGE_DELIVERED, now, "bench", data) for _ in range(min(500, n - start))
            ]
            async with database.write.begin() as session:
                await events.record(session, batch, now)
    finally:
        await database.dispose()


def count(path: Path, sql: str) -> tuple[float | int | str | None, ...]:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return tuple(connection.execute(sql).fetchone())


def worker_rate(path: Path, n: int, concurrency: int, timeout: float = 300.0) -> tuple[float, float]:
    """Run a worker until every delivery succeeded; (deliveries per second over its attempts, CPU seconds)."""
    env = os.environ | {
        "REACHOUT_DATABASE_URL": f"sqlite+aiosqlite:///{path}",
        "REACHOUT_WEBHOOKS_ENDPOINT_CONCURRENCY": str(concurrency),
        "REACHOUT_WEBHOOKS_ALLOW_PRIVATE": "true",
        "REACHOUT_LOG_LEVEL": "warning",
    }
    worker = subprocess.Popen([str(ROOT / ".venv" / "bin" / "reachout"), "worker"], env=env)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            (done,) = count(path, "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
            if done == n:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"only {done} of {n} delivered in {timeout} s")
        cpu = process_cpu(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
    first, last = count(path, "SELECT min(attempted_at), max(attempted_at) FROM webhook_attempts")
    span = (datetime.fromisoformat(str(last)) - datetime.fromisoformat(str(first))).total_seconds()
    return n / span, cpu


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="Requests in flight to the endpoint, the bare loop's and the worker's per endpoint (default 16: "
        "reachout's REACHOUT_WEBHOOKS_ENDPOINT_CONCURRENCY).",
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    sink, url = start_sink()
    bare_rates: list[float] = []
    worker_rates: list[float] = []
    try:
        for run in range(1, args.runs + 1):
            bare = asyncio.run(bare_loop(url, payloads(args.events), args.concurrency))
            with tempfile.TemporaryDirectory() as workdir:
                path = Path(workdir) / "webhooks.db"
                asyncio.run(prepare(f"sqlite+aiosqlite:///{path}", url, args.events))
                rate, cpu = worker_rate(path, args.events, args.concurrency)
            bare_rates.append(bare)
            worker_rates.append(rate)
            print(
                f"run {run}: bare httpx loop {bare:,.0f}/s, reachout worker {rate:,.0f}/s "
                f"({rate / bare:.2f} x; worker CPU {cpu:.1f} s for {args.events} deliveries)",
                flush=True,
            )
    finally:
        sink.terminate()
        sink.wait(10)
    bare, rate = statistics.median(bare_rates), statistics.median(worker_rates)
    ratio = rate / bare
    met = rate >= TARGET_RATE and ratio >= TARGET_RATIO
    print(f"\nmedian: bare {bare:,.0f}/s, reachout {rate:,.0f}/s, {ratio:.2f} x")
    print(
        f"target: >= {TARGET_RATE:.0f}/s and >= {TARGET_RATIO} x the bare loop -> "
        + ("met" if met else "NOT met")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
