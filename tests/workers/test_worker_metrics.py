"""Metrics across processes: the API's `/metrics` under `reachout serve` adds up what its worker child
counted, through a restart; a worker on its own serves its metrics on a port of its own."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import processes
from tests.support.metrics import Samples, parse, value
from tests.support.provisioning import POLYAI_HEADERS, standard_document

pytestmark = pytest.mark.slow
TIMINGS = {
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.05",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.1",
    "REACHOUT_METRICS_CACHE_SECONDS": "0",
}
STARTED = re.compile(r"worker process started\s.*pid=(\d+)")
SANDBOX = {"project": "clinic", "carrier": "sandbox"}


def children(log: Path) -> list[int]:
    return [int(pid) for pid in STARTED.findall(log.read_text(errors="replace"))]


async def greet(base_url: str, user: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        payload = {"message": f"Hello {user}", "user_number": user}
        response = await client.post("/v1/outbound-sms", headers=POLYAI_HEADERS, json=payload)
        assert response.status_code == 202, response.text


async def scrape_until(base_url: str, name: str, expected: float, **labels: str) -> Samples:
    """Scrape until the samples named `name` with `labels` add up to `expected` (30 s at most)."""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while True:
            response = await client.get("/metrics")
            assert response.status_code == 200, response.text
            samples = parse(response.text)
            if value(samples, name, **labels) == expected or time.monotonic() > deadline:
                assert value(samples, name, **labels) == expected, response.text
                return samples
            await asyncio.sleep(0.1)


def config_file(tmp_path: Path) -> Path:
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(standard_document()))
    return config


async def test_the_servers_metrics_add_up_its_worker_process_through_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"a previous run's")  # cleaned at start, or unreadable
    env = {**TIMINGS, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    api = processes.server(database_url, config_file(tmp_path), tmp_path, extra_env=env).start()
    try:
        api.wait_for_log("worker running")
        assert not (shared / "counter_999999.db").exists()
        [first] = children(api.log_path)
        await greet(api.base_url, "+14155552001")
        # Only the worker child dispatches: the API's /metrics shows what another process counted.
        samples = await scrape_until(api.base_url, "reachout_messages_delivered_total", 1, **SANDBOX)
        assert value(samples, "reachout_messages_accepted_total", project="clinic") == 1
        assert value(samples, "reachout_messages_handed_off_total", **SANDBOX) == 1
        assert value(samples, "reachout_send_to_delivered_seconds_count", carrier="sandbox") == 1
        assert value(samples, "reachout_worker_claim_size_count", runner="dispatch") >= 1
        assert value(samples, "reachout_accept_seconds_count", dialect="polyai") == 1
        assert value(samples, "reachout_outbox_queued_messages") == 0
        assert (shared / f"counter_{first}.db").exists()
        assert (shared / f"gauge_livesum_{first}.db").exists()

        os.kill(first, signal.SIGKILL)
        api.wait_for_log("worker process exited; restarting")
        deadline = time.monotonic() + 30
        while len(children(api.log_path)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not (shared / f"gauge_livesum_{first}.db").exists()  # a dead process's live gauges go
        await greet(api.base_url, "+14155552002")
        # The first child's counts stay in the sum: counters never go back after a restart.
        samples = await scrape_until(api.base_url, "reachout_messages_delivered_total", 2, **SANDBOX)
        assert value(samples, "reachout_messages_handed_off_total", **SANDBOX) == 2
        assert value(samples, "reachout_messages_accepted_total", project="clinic") == 2
    finally:
        api.stop()
    assert shared.is_dir()  # a directory the operator named is theirs: emptied at the next start, not removed


async def test_a_worker_on_its_own_serves_its_metrics_on_its_port(database_url: str, tmp_path: Path) -> None:
    config = config_file(tmp_path)
    api = processes.server(database_url, config, tmp_path, worker=False, extra_env=TIMINGS)
    port = processes.free_port()
    worker = processes.ReachoutProcess(
        ["worker", "--config", str(config), "--metrics-port", str(port)],
        processes.reachout_env(database_url, TIMINGS),
        tmp_path / "worker.log",
    )
    try:
        api.start()
        worker.start()
        worker.wait_for_log("worker running")
        await greet(api.base_url, "+14155552003")
        at_worker = await scrape_until(
            f"http://127.0.0.1:{port}", "reachout_messages_delivered_total", 1, **SANDBOX
        )
        assert value(at_worker, "reachout_messages_accepted_total") == 0
        at_api = await scrape_until(api.base_url, "reachout_messages_accepted_total", 1, project="clinic")
        assert value(at_api, "reachout_messages_delivered_total") == 0  # each process serves its own
        assert value(at_api, "reachout_outbox_queued_messages") == 0  # the database's gauges, from the API
    finally:
        worker.stop()
        api.stop()
