"""`/metrics`: what every process of this server counted, and gauges read from the database when scraped.

The database's gauges (the outbox, the senders' limits) are read in one read session by bounded queries an
index serves, at most once per `cache_seconds` however many scrapers ask: scraping cannot load the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reachout.db.engine import Database
from reachout.kit import metrics
from reachout.kit.clock import Clock
from reachout.logs import get_logger
from reachout.messaging import service as messaging
from reachout.messaging.models import SendPriority
from reachout.messaging.schemas import OutboxGauges
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import SenderLimit

log = get_logger("metrics")

# Counting a backlog costs as much as the backlog is long: past this it reads as this many.
QUEUE_COUNT_CAP = 100_000


class _Families(Collector):
    """Metric families read once, handed to every scrape until they are read again."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = tuple(families)

    def collect(self) -> Iterator[Metric]:
        """The families as read."""
        return iter(self._families)


class DatabaseGauges:
    """The gauges the database holds the truth of, read at scrape time and kept for `cache_seconds`."""

    def __init__(self, database: Database, clock: Clock, cache_seconds: float) -> None:
        self._database = database
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._read: tuple[float, _Families] | None = None
        self._reading: asyncio.Lock | None = None

    async def collector(self) -> Collector:
        """The gauges as last read, read again if older than the cache allows (one reader at a time)."""
        if self._reading is None:
            self._reading = asyncio.Lock()
        async with self._reading:  # concurrent scrapes share one read
            if self._read is None or time.monotonic() - self._read[0] >= self._cache_seconds:
                self._read = (time.monotonic(), _Families(await self._families()))
            return self._read[1]

    async def _families(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "reachout_database_gauges_up", "1 if the database's gauges were read at this scrape's refresh."
        )
        try:
            now = self._clock.now()
            async with self._database.read() as session:
                outbox = await messaging.outbox_gauges(session, now, QUEUE_COUNT_CAP)
                limits = await tenancy.sender_limits(session)
        except Exception as error:  # the counters are still worth serving without the database's gauges
            log.warning("reading the database's gauges failed", error=type(error).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_outbox(outbox, now.timestamp()), *_limits(limits)]


def _outbox(outbox: OutboxGauges, now: float) -> list[Metric]:
    queued = GaugeMetricFamily(
        "reachout_outbox_queued_messages",
        f"Outbound messages queued, due or not (counted up to {QUEUE_COUNT_CAP}).",
        value=outbox.queued,
    )
    due = GaugeMetricFamily(
        "reachout_outbox_due_messages",
        f"Queued messages whose time has come, waiting for a dispatcher (counted up to {QUEUE_COUNT_CAP}).",
        value=outbox.due,
    )
    oldest = GaugeMetricFamily(
        "reachout_outbox_oldest_due_age_seconds",
        "How long the longest-waiting due message has been due (0: none is due).",
        labels=["priority"],
    )
    for priority in SendPriority:
        since = outbox.oldest_due.get(priority)
        age = 0.0 if since is None else max(now - since.timestamp(), 0.0)
        oldest.add_metric([priority.name.lower()], age)
    return [queued, due, oldest]


def _limits(limits: Sequence[SenderLimit]) -> list[Metric]:
    senders = GaugeMetricFamily(
        "reachout_sender_limit_segments_per_second",
        "A paced sender number's limit; compare rate(reachout_sender_segments_total) with it.",
        labels=["project", "sender", "brand"],
    )
    brands = GaugeMetricFamily(
        "reachout_brand_limit_segments_per_second",
        "A brand's cap, which all its numbers share.",
        labels=["brand"],
    )
    capped: dict[str, float] = {}
    for limit in limits:
        if limit.throughput_mps is not None:
            senders.add_metric([limit.project_id, limit.number, limit.brand or ""], limit.throughput_mps)
        if limit.brand is not None and limit.brand_throughput_mps is not None:
            capped[limit.brand] = limit.brand_throughput_mps
    for brand, cap in sorted(capped.items()):
        brands.add_metric([brand], cap)
    return [senders, brands]


async def render(gauges: DatabaseGauges) -> bytes:
    """The body of a `/metrics` response."""
    return metrics.exposition(await gauges.collector())
