"""The Prometheus instruments every reachout process counts with, and how `/metrics` reads them.

Under `reachout serve` the API and its worker child are two processes behind one `/metrics`: the multiprocess
mode of prometheus-client keeps each process's values in files under `PROMETHEUS_MULTIPROC_DIR`, and a scrape
adds them up. What a transaction counts is kept on its session and added once it commits (`kit.after_commit`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.registry import Collector
from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from reachout.logs import get_logger

log = get_logger("metrics")

MULTIPROCESS_DIRECTORY: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
NO_LABEL: Final = "none"  # a label whose value is unknown (no carrier yet, no error code)
_PENDING: Final = "reachout.metrics.pending"  # the session.info key of what waits for the commit

_SECONDS_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECONDS_SLOW = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_SECONDS_AGENT = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
_SECONDS_LAG = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_CLAIM_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class Instruments:
    """Every counter, histogram and gauge a process updates (docs/metrics.md says what each means)."""

    accepted: Counter
    handed_off: Counter
    delivered: Counter
    failed: Counter
    send_retries: Counter
    sender_segments: Counter
    accept_seconds: Histogram
    send_to_delivered_seconds: Histogram
    agent_turn_seconds: Histogram
    timer_lag_seconds: Histogram
    claim_size: Histogram
    pool_checked_out: Gauge


@cache
def instruments() -> Instruments:
    """The instruments, made on first use: after `share_between_processes` has chosen how values are kept."""
    # A `_created` series per child doubles what is scraped for what rate() never needs (and multiprocess
    # mode has none): one shape of exposition for one process or several.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    return Instruments(
        accepted=Counter(
            "reachout_messages_accepted", "First messages accepted through the API.", ["project", "channel"]
        ),
        handed_off=Counter(
            "reachout_messages_handed_off", "Outbound messages a carrier took.", ["project", "carrier"]
        ),
        delivered=Counter(
            "reachout_messages_delivered", "Outbound messages reported delivered.", ["project", "carrier"]
        ),
        failed=Counter(
            "reachout_messages_failed",
            "Outbound messages that ended failed, undelivered or canceled.",
            ["project", "carrier", "status", "error_code"],
        ),
        send_retries=Counter(
            "reachout_send_retries",
            "Hand-offs that failed and will be tried again.",
            ["project", "carrier", "error_code"],
        ),
        sender_segments=Counter(
            "reachout_sender_segments",
            "Message segments handed off, by sender number.",
            ["project", "sender"],
        ),
        accept_seconds=Histogram(
            "reachout_accept_seconds",
            "From a send request's arrival to its 201/202.",
            ["dialect"],
            buckets=_SECONDS_FAST,
        ),
        send_to_delivered_seconds=Histogram(
            "reachout_send_to_delivered_seconds",
            "From the hand-off to the carrier to the delivery report.",
            ["carrier"],
            buckets=_SECONDS_SLOW,
        ),
        agent_turn_seconds=Histogram(
            "reachout_agent_turn_seconds",
            "How long the agent took to answer a turn.",
            ["outcome"],
            buckets=_SECONDS_AGENT,
        ),
        timer_lag_seconds=Histogram(
            "reachout_timer_lag_seconds",
            "From a conversation job's due time to a worker claiming it.",
            ["kind"],
            buckets=_SECONDS_LAG,
        ),
        claim_size=Histogram(
            "reachout_worker_claim_size",
            "Items a runner's pass found due (passes that found none are not observed).",
            ["runner"],
            buckets=_CLAIM_SIZES,
        ),
        pool_checked_out=Gauge(
            "reachout_db_pool_checked_out_connections",
            "Database connections checked out of the pool, summed over live processes.",
            ["pool"],
            multiprocess_mode="livesum",
        ),
    )


def count(counter: Counter, amounts: Mapping[tuple[str, ...], float]) -> None:
    """Add each amount to the counter's child for its labels: one increment per label set, not per item."""
    for labels, amount in amounts.items():
        if amount:
            counter.labels(*labels).inc(amount)


def observe(histogram: Histogram, observations: Iterable[tuple[str, float]]) -> None:
    """Observe each (label, value) in the histogram's child for that label."""
    for label, value in observations:
        histogram.labels(label).observe(value)


# --- what is timed and watched ------------------------------------------------------------------------------


@contextlib.contextmanager
def agent_turn() -> Iterator[None]:
    """Time an agent's turn: `ok`, `timeout` or `error` by how the block ends."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except TimeoutError:
        outcome = "timeout"
        raise
    finally:
        instruments().agent_turn_seconds.labels(outcome).observe(time.perf_counter() - started)


def watch_pool(engine: AsyncEngine, name: str) -> None:
    """Keep `reachout_db_pool_checked_out_connections{pool=name}` up to date with the engine's pool."""
    gauge = instruments().pool_checked_out.labels(name)
    listen(engine.sync_engine, "checkout", lambda *_: gauge.inc())
    listen(engine.sync_engine, "checkin", lambda *_: gauge.dec())


def accept_latency(routes: Mapping[str, str]) -> Callable[[Scope, int, float], None]:
    """An observer for `kit.http.RequestEdge`: `reachout_accept_seconds` of a POST to a send route (path ->
    its dialect) answered 201 or 202."""
    # path -> its dialect's child, looked up once: a label lookup costs as much as the observation
    children = {path: instruments().accept_seconds.labels(dialect) for path, dialect in routes.items()}

    def observe(scope: Scope, status: int, seconds: float) -> None:
        if status in (201, 202) and scope["method"] == "POST":
            histogram = children.get(scope["path"])
            if histogram is not None:
                histogram.observe(seconds)

    return observe


# --- one process or several -------------------------------------------------------------------------------


def share_between_processes(directory: Path | None) -> Path:
    """Keep values in files under `directory` (a new temporary one if None), emptied first, for this process
    and the children it starts (they inherit PROMETHEUS_MULTIPROC_DIR); before any instrument is made."""
    if instruments.cache_info().currsize:
        raise RuntimeError("metrics are already kept in this process; share them before first use")
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="reachout-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's processes: their counts and gauges are not ours
        stale.unlink()
    os.environ[MULTIPROCESS_DIRECTORY] = str(directory)
    # prometheus-client picks how values are kept when it is imported, before the directory was chosen.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return directory


def remove_shared(directory: Path) -> None:
    """Delete a directory `share_between_processes` made, once every process writing to it has ended."""
    shutil.rmtree(directory, ignore_errors=True)


def shared_directory() -> Path | None:
    """The directory values are shared through, or None: this process keeps its own."""
    path = os.environ.get(MULTIPROCESS_DIRECTORY)
    return Path(path) if path else None


def process_ended(pid: int) -> None:
    """Forget the live gauges of a process that exited (a worker child stopped or restarted)."""
    directory = shared_directory()
    if directory is not None:
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's instruments."""
    directory = shared_directory()
    if directory is None:
        return prometheus_client.REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, str(directory))  # type: ignore[no-untyped-call]
    return merged


def exposition(*more: Collector) -> bytes:
    """The text exposition of `registry()` and of `more` collectors (the database's gauges, say)."""
    extra = CollectorRegistry(auto_describe=False)
    for collector in more:
        extra.register(collector)
    return prometheus_client.generate_latest(registry()) + prometheus_client.generate_latest(extra)


def serve_http(host: str, port: int) -> WSGIServer:
    """Serve `registry()` on host:port from a thread (a worker without an API); returns the server."""
    server, _ = prometheus_client.start_http_server(port, addr=host, registry=registry())
    return server
