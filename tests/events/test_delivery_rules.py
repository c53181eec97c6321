"""How deliveries are made, on the injectable clock: the schedule, redirects, Retry-After, timeouts, 410,
the 5-day disable, the SSRF guard, and a slow endpoint that holds up no other."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reachout.events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from reachout.kit.clock import FakeClock
from tests.support.chat import Chat, ScriptedAgent, chat_on, project_document
from tests.support.polyai import EXAMPLE, PATH
from tests.support.provisioning import POLYAI_HEADERS, SENDER
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import SECRET, hooked_document, near_real_clock

DAY = 86_400.0


@pytest.fixture
def clock() -> FakeClock:
    return near_real_clock()


async def send_greeting(chat: Chat) -> None:
    response = await chat.service.client.post(
        PATH, json=EXAMPLE | {"agent_number": SENDER}, headers=POLYAI_HEADERS
    )
    assert response.status_code == 202


async def attempts(chat: Chat) -> list[tuple[str, datetime, int | None, str | None]]:
    """(event id, when, status code, error) of every attempt, in the order made."""
    async with chat.service.runtime.database.read() as session:
        rows = await session.execute(
            select(
                WebhookDelivery.event_id,
                WebhookAttempt.attempted_at,
                WebhookAttempt.status_code,
                WebhookAttempt.error,
            )
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def endpoint_row(chat: Chat) -> WebhookEndpoint:
    async with chat.service.runtime.database.read() as session:
        return (await session.execute(select(WebhookEndpoint))).scalar_one()


def first_event(
    made: list[tuple[str, datetime, int | None, str | None]],
) -> list[tuple[datetime, int | None, str | None]]:
    event_id = made[0][0]
    return [(at, code, error) for e, at, code, error in made if e == event_id]


async def test_a_redirect_is_a_failure_and_the_schedule_goes_on(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    receiver.respond(302, headers={"location": "http://example.com/elsewhere"})
    start = webhooked.clock.now()
    await send_greeting(webhooked)
    await webhooked.settle(400)
    made = first_event(await attempts(webhooked))
    assert [code for _, code, _ in made] == [302, 302, 302]
    assert all(error == "302: redirects are not followed" for _, _, error in made)
    first, second, third = (at - start for at, _, _ in made)
    assert first == timedelta(0)
    assert timedelta(seconds=4) <= second <= timedelta(seconds=6)
    assert timedelta(seconds=240) <= third - second <= timedelta(seconds=360)
    assert all(d.path == "/webhooks" for d in receiver.received), "the Location was never followed"


@pytest.mark.parametrize(("status", "retry_after", "waited"), [(429, "8", 8.0), (503, "3600", None)])
async def test_retry_after_is_honoured_within_the_delay_and_twice_it(
    webhooked: Chat, receiver: WebhookReceiver, status: int, retry_after: str, waited: float | None
) -> None:
    receiver.respond(status, headers={"retry-after": retry_after})
    await send_greeting(webhooked)
    await webhooked.settle(15)
    (first, _, _), (second, code, _) = first_event(await attempts(webhooked))[:2]
    delay = (second - first).total_seconds()
    assert code == status
    if waited is not None:
        assert delay == pytest.approx(waited, abs=0.01)
    else:  # an hour asked: no more than twice the scheduled 5 s (± 20 %)
        assert 8.0 <= delay <= 12.0


async def test_a_request_that_takes_too_long_is_a_failed_attempt(
    database_url: str, clock: FakeClock, agent: ScriptedAgent, receiver: WebhookReceiver
) -> None:
    receiver.delay(5)
    document = hooked_document(receiver.url)
    async with chat_on(
        database_url, clock, agent, document, webhooks_allow_private=True, webhooks_timeout_seconds=0.2
    ) as chat:
        await send_greeting(chat)
        started = time.monotonic()
        await chat.service.work()
        assert time.monotonic() - started < 3
        [(_, code, error)] = first_event(await attempts(chat))
        assert (code, error) == (None, "timed out after 0.2 s")
        receiver.recover()


async def test_an_endpoint_failing_for_five_days_is_disabled_and_can_be_enabled(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    receiver.respond(500)
    start = webhooked.clock.now()
    for _ in range(7):
        await send_greeting(webhooked)
        await webhooked.settle(DAY)
        if not (await endpoint_row(webhooked)).enabled:
            break
    endpoint = await endpoint_row(webhooked)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "every attempt failed for 5 days")
    assert endpoint.failing_since == start
    assert endpoint.disabled_at is not None and endpoint.disabled_at - start >= timedelta(days=5)
    assert endpoint.disabled_at - start < timedelta(days=5, hours=11), "disabled by the first attempt after"
    made = len(await attempts(webhooked))
    await send_greeting(webhooked)
    await webhooked.settle(DAY)
    assert len(await attempts(webhooked)) == made, "nothing is sent to a disabled endpoint"

    receiver.recover()
    enabled = await webhooked.service.client.post(
        f"/api/v1/webhooks/{endpoint.id}/enable", headers={"Authorization": "Bearer rk_test_acme_000001"}
    )
    assert enabled.status_code == 200
    assert (await endpoint_row(webhooked)).failing_since is None


async def test_a_private_target_is_refused_as_a_failed_attempt(
    database_url: str, clock: FakeClock, agent: ScriptedAgent, receiver: WebhookReceiver
) -> None:
    async with chat_on(database_url, clock, agent, hooked_document(receiver.url)) as chat:
        await send_greeting(chat)
        await chat.settle(10)
        made = first_event(await attempts(chat))
        assert [(code, error) for _, code, error in made] == [
            (None, "refused: 127.0.0.1 is a loopback address")
        ] * 2
        assert receiver.received == [], "nothing reached it"


async def test_a_slow_endpoint_delays_another_s_deliveries_by_under_a_second(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    async with WebhookReceiver(SECRET) as slow, WebhookReceiver(SECRET) as quick:
        slow.delay(10)
        document = project_document()
        document["accounts"][0]["projects"][0]["webhooks"] = [
            {"url": slow.url, "secret": SECRET},
            {"url": quick.url, "secret": SECRET},
        ]
        async with chat_on(
            database_url, clock, agent, document, webhooks_allow_private=True, webhooks_endpoint_concurrency=4
        ) as chat:
            stop = asyncio.Event()
            runtime = chat.service.runtime
            runtime.wake_worker = runtime.worker.wake
            worker = asyncio.create_task(runtime.worker.run(stop))
            try:
                accepted_at = []
                for _ in range(10):
                    await send_greeting(chat)
                    accepted_at.append(time.monotonic())
                events = await quick.wait_for(30, timeout=10)  # each greeting: started, queued, sending
                late = max(arrived(e) for e in events) - accepted_at[-1]
                assert late < 1.0, f"the quick endpoint waited {late:.2f} s behind the slow one"
                assert len(slow.events()) == 0
            finally:
                stop.set()
                slow.stop()
                await worker


def arrived(delivery: Any) -> float:
    """When a delivery arrived, on the monotonic clock of this process."""
    return time.monotonic() - (time.time() - delivery.arrived_at.timestamp())


async def test_an_attempt_that_cannot_even_be_made_is_a_failed_attempt_on_the_schedule(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    """Whatever goes wrong making the request (here a secret that decodes to nothing) fails the attempt: the
    delivery goes on on its schedule instead of being lost with its task."""
    async with webhooked.service.runtime.database.write.begin() as session:
        endpoint = (await session.execute(select(WebhookEndpoint))).scalar_one()
        endpoint.secrets = ["whsec_%%%"]
    await send_greeting(webhooked)
    await webhooked.settle(10)
    made = first_event(await attempts(webhooked))
    assert [(code, error) for _, code, error in made] == [
        (None, "internal error: EmptyWebhookSecretError")
    ] * 2
    assert receiver.received == []
