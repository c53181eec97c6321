"""`/metrics` after a send that is delivered and one the carrier refuses: the counters, histograms and the
database's gauges move as they should, and nothing in a label names a recipient or a message."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reachout.app import create_app
from reachout.carriers.base import CarrierUnavailable
from reachout.carriers.plugin import CarrierContext, CarrierPlugin
from reachout.carriers.registry import FACTORIES, CarrierRegistry
from reachout.kit.clock import FakeClock
from tests.support.carriers import move_number, sandbox_without_lookup
from tests.support.chat import DEBOUNCE, Chat, ScriptedAgent, chat_on, project_document, registry_of
from tests.support.metrics import Samples, has, moved, scrape, value
from tests.support.polyai import PATH
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER
from tests.support.service import Service, make_settings

INVALID = "+15005550001"  # the sandbox refuses it at the hand-off: 21211
PROJECT = "clinic"
THROUGHPUT = 10.0  # the sender's pace, in segments per second
DELIVERED_AFTER = 3.0  # the sandbox's delay from hand-off to the delivery report
DOCS = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
DASHBOARD = DOCS.with_name("grafana-dashboard.json")


class BusyCarrier:
    """Never reachable: every send is retried later."""

    async def send(self, text: Any) -> Any:
        raise CarrierUnavailable("busy")

    async def find(self, text: Any, since: Any) -> Any:
        return ()


def busy_plugin(_context: CarrierContext) -> CarrierPlugin | None:
    return CarrierRegistry.of_texts({"busy": BusyCarrier()}).plugin("busy")


@pytest.fixture
async def chat(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> AsyncIterator[Chat]:
    """reachout with the scripted agent, a paced SENDER and a sandbox that cannot look lines up."""
    carriers = {**FACTORIES, "sandbox": sandbox_without_lookup, "busy": busy_plugin}
    document = project_document()
    document["accounts"][0]["projects"][0]["numbers"][0]["throughput_mps"] = THROUGHPUT
    async with chat_on(
        database_url,
        clock,
        agent,
        document,
        carriers=carriers,
        sandbox_delivered_after_seconds=DELIVERED_AFTER,
        metrics_cache_seconds=0.0,
    ) as built:
        yield built


async def greet(chat: Chat, number: str) -> None:
    body = {"message": "Hi, see you tomorrow at 2pm.", "user_number": number, "agent_number": SENDER}
    response = await chat.service.client.post(PATH, json=body, headers=POLYAI_HEADERS)
    assert response.status_code == 202, response.text


def labels_of(samples: Samples) -> set[str]:
    return {v for (_, labels) in samples for _, v in labels}


async def test_a_send_and_a_failure_move_the_counters_and_histograms(chat: Chat) -> None:
    client = chat.service.client
    before = await scrape(client)
    await greet(chat, USER)
    await greet(chat, INVALID)

    accepted = await scrape(client)
    assert moved(before, accepted, "reachout_messages_accepted_total", project=PROJECT, channel="sms") == 2
    assert moved(before, accepted, "reachout_accept_seconds_count", dialect="polyai") == 2
    assert moved(before, accepted, "reachout_accept_seconds_sum", dialect="polyai") > 0
    assert value(accepted, "reachout_outbox_queued_messages") == 2
    assert value(accepted, "reachout_outbox_due_messages") == 2
    assert value(accepted, "reachout_outbox_oldest_due_age_seconds", priority="first_message") == 0
    chat.clock.advance(1.5)  # nobody dispatched yet: the oldest due message waits
    waiting = await scrape(client)
    assert value(
        waiting, "reachout_outbox_oldest_due_age_seconds", priority="first_message"
    ) == pytest.approx(1.5)
    assert value(waiting, "reachout_outbox_oldest_due_age_seconds", priority="reply") == 0

    await chat.service.settle()
    after = await scrape(client)
    sandbox = {"project": PROJECT, "carrier": "sandbox"}
    assert moved(before, after, "reachout_messages_handed_off_total", **sandbox) == 1
    assert moved(before, after, "reachout_messages_delivered_total", **sandbox) == 1
    refused = {"status": "failed", "error_code": "21211"}
    assert moved(before, after, "reachout_messages_failed_total", **sandbox, **refused) == 1
    assert moved(before, after, "reachout_messages_failed_total") == 1
    assert moved(before, after, "reachout_send_to_delivered_seconds_count", carrier="sandbox") == 1
    waited = moved(before, after, "reachout_send_to_delivered_seconds_sum", carrier="sandbox")
    assert waited == pytest.approx(DELIVERED_AFTER, abs=0.5)
    assert moved(before, after, "reachout_sender_segments_total", project=PROJECT, sender=SENDER) == 1
    assert moved(before, after, "reachout_worker_claim_size_count", runner="dispatch") >= 1
    assert moved(before, after, "reachout_worker_claim_size_sum", runner="dispatch") >= 2

    assert value(after, "reachout_outbox_queued_messages") == 0
    assert value(after, "reachout_outbox_due_messages") == 0
    assert value(after, "reachout_outbox_oldest_due_age_seconds", priority="first_message") == 0
    assert value(after, "reachout_database_gauges_up") == 1
    limit = {"project": PROJECT, "sender": SENDER}
    assert value(after, "reachout_sender_limit_segments_per_second", **limit) == THROUGHPUT
    assert has(after, "reachout_db_pool_checked_out_connections", pool="write")

    found = labels_of(after)
    assert USER not in found and INVALID not in found  # recipients never label anything


async def test_a_conversation_turn_is_timed_and_its_lag_observed(chat: Chat) -> None:
    client = chat.service.client
    await greet(chat, USER)
    await chat.settle(5)
    before = await scrape(client)
    await chat.text("Can I move it?")
    await chat.settle(DEBOUNCE + 5)
    after = await scrape(client)
    assert await chat.received() == ["Hi, see you tomorrow at 2pm.", "you said: Can I move it?"]
    assert moved(before, after, "reachout_agent_turn_seconds_count", outcome="ok") == 1
    assert moved(before, after, "reachout_timer_lag_seconds_count", kind="turn") == 1
    assert moved(before, after, "reachout_messages_handed_off_total", project=PROJECT) == 1  # the reply
    assert moved(before, after, "reachout_messages_accepted_total") == 0  # a reply is no accept
    assert moved(before, after, "reachout_worker_claim_size_count", runner="conversations") == 1


async def test_a_failing_agent_is_timed_as_an_error(chat: Chat) -> None:
    chat.agent.failures = 1
    await greet(chat, USER)
    await chat.settle(5)
    before = await scrape(chat.service.client)
    await chat.text("Hello?")
    await chat.settle(DEBOUNCE + 5)  # fails once, then answers on the retry
    after = await scrape(chat.service.client)
    assert moved(before, after, "reachout_agent_turn_seconds_count", outcome="error") == 1
    assert moved(before, after, "reachout_agent_turn_seconds_count", outcome="ok") == 1
    assert moved(before, after, "reachout_timer_lag_seconds_count", kind="turn") == 2


async def test_a_send_the_carrier_could_not_take_counts_as_a_retry(chat: Chat) -> None:
    await move_number(chat.service, SENDER, "busy")
    before = await scrape(chat.service.client)
    await greet(chat, USER)
    await chat.service.work()
    after = await scrape(chat.service.client)
    retried = {"project": PROJECT, "carrier": "busy", "error_code": "20503"}
    assert moved(before, after, "reachout_send_retries_total", **retried) == 1
    assert moved(before, after, "reachout_messages_failed_total") == 0
    assert value(after, "reachout_outbox_queued_messages") == 1
    assert value(after, "reachout_outbox_due_messages") == 0  # waiting for its retry, not due


async def test_the_gauges_read_from_the_database_are_cached(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    settings = make_settings(database_url, metrics_cache_seconds=3600.0)
    app = create_app(settings, clock=clock, run_worker=False, agents=registry_of(agent))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reachout.test") as client:
            service = Service(runtime=app.state.runtime, client=client, clock=clock)
            await service.provision(project_document())
            first = await scrape(client)
            await greet(Chat(service, agent), USER)
            second = await scrape(client)
    assert value(first, "reachout_outbox_queued_messages") == 0
    assert value(second, "reachout_outbox_queued_messages") == 0  # read again only once the cache expires
    assert moved(first, second, "reachout_messages_accepted_total", project=PROJECT) == 1


async def test_metrics_stay_out_of_the_openapi_document(chat: Chat) -> None:
    document = (await chat.service.client.get("/openapi.json")).json()
    assert "/metrics" not in document["paths"]


async def test_every_metric_is_documented_and_the_dashboard_asks_for_no_other(chat: Chat) -> None:
    response = await chat.service.client.get("/metrics")
    served = {f.name for f in text_string_to_metric_families(response.text) if f.name.startswith("reachout_")}
    assert len(served) == 18  # 12 instruments, 6 gauges read from the database
    documented = {re.sub(r"_total$", "", name) for name in re.findall(r"`(reachout_\w+)`", DOCS.read_text())}
    assert documented == served
    dashboard = json.loads(DASHBOARD.read_text())
    asked = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
        for name in re.findall(r"reachout_\w+", target["expr"])
    }
    assert asked <= served and len(asked) > 10
