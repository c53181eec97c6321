"""The test webhook receiver verifies, records and answers as a customer's Standard Webhooks endpoint does."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"receiver-test-secret-0123456789ab").decode()
OTHER = "whsec_" + base64.b64encode(b"some-other-secret-0123456789abcd").decode()


def event(kind: str = "message.delivered", **data: Any) -> bytes:
    body = {"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": data or {"id": "msg_1"}}
    return json.dumps(body).encode()


def signed(
    msg_id: str,
    body: bytes,
    secret: str = SECRET,
    at: datetime | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed with `secret` at `at` (now by default)."""
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


async def post(receiver: WebhookReceiver, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(receiver.url, content=body, headers=headers)


async def test_a_valid_delivery_is_accepted_and_recorded() -> None:
    body = event(to="+15551234567")
    async with WebhookReceiver(SECRET) as receiver:
        answer = await post(receiver, body, signed("msg_a", body))
        events = await receiver.wait_for(1, timeout=2)

    assert answer.status_code == 200
    assert answer.text == "ok"
    [delivery] = events
    assert delivery.webhook_id == "msg_a"
    assert delivery.verified and delivery.accepted and delivery.reason is None
    assert delivery.status == 200 and delivery.attempt == 1
    assert delivery.body == json.loads(body)
    assert delivery.type == "message.delivered" and delivery.data == {"to": "+15551234567"}
    assert delivery.signature is not None and delivery.signature.startswith("v1,")
    assert delivery.timestamp is not None and abs(int(delivery.timestamp) - time.time()) < 5
    assert abs((datetime.now(UTC) - delivery.arrived_at).total_seconds()) < 5
    assert receiver.by_id == {"msg_a": delivery}
    assert receiver.received == [delivery] and receiver.rejected == [] and receiver.duplicates == {}


def _tampered(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"msg_1", b"msg_2"), signed("msg_t", body)


@pytest.mark.parametrize(
    ("case", "request_of"),
    [
        ("wrong secret", lambda body: (body, signed("msg_w", body, secret=OTHER))),
        ("tampered body", _tampered),
        (
            "stale timestamp",
            lambda body: (body, signed("msg_s", body, at=datetime.now(UTC) - timedelta(minutes=10))),
        ),
        (
            "future timestamp",
            lambda body: (body, signed("msg_f", body, at=datetime.now(UTC) + timedelta(minutes=10))),
        ),
        ("no headers", lambda body: (body, {"content-type": "application/json"})),
        (
            "no signature",
            lambda body: (body, {k: v for k, v in signed("m", body).items() if k != "webhook-signature"}),
        ),
        ("no id", lambda body: (body, {k: v for k, v in signed("m", body).items() if k != "webhook-id"})),
        (
            "malformed signature",
            lambda body: (body, {**signed("msg_m", body), "webhook-signature": "garbage"}),
        ),
        ("bad timestamp", lambda body: (body, {**signed("msg_b", body), "webhook-timestamp": "yesterday"})),
    ],
)
async def test_an_unverifiable_delivery_is_rejected_with_400(case: str, request_of: Any) -> None:
    body, headers = request_of(event())
    async with WebhookReceiver(SECRET) as receiver:
        answer = await post(receiver, body, headers)

    assert answer.status_code == 400, case
    [delivery] = receiver.received
    assert not delivery.verified and not delivery.accepted
    assert delivery.status == 400 and delivery.reason
    assert receiver.rejected == [delivery]
    assert receiver.events() == [] and receiver.by_id == {}


async def test_the_reason_of_a_rejection_is_the_librarys() -> None:
    body = event()
    stale = signed("msg_old", body, at=datetime.now(UTC) - timedelta(minutes=10))
    async with WebhookReceiver(SECRET) as receiver:
        await post(receiver, body, stale)
        await post(receiver, body, signed("msg_other", body, secret=OTHER))

    assert [d.reason for d in receiver.rejected] == [
        "WebhookVerificationError: Message timestamp too old",
        "WebhookVerificationError: No matching signature found",
    ]


async def test_fail_first_fails_each_webhook_id_its_first_attempts() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        receiver.fail_first(2)
        statuses: dict[str, list[int]] = {"msg_1": [], "msg_2": []}
        for _ in range(3):
            for msg_id, answers in statuses.items():
                body = event(id=msg_id)
                answers.append((await post(receiver, body, signed(msg_id, body))).status_code)
        events = await receiver.wait_for(2, timeout=2)

    assert statuses == {"msg_1": [500, 500, 200], "msg_2": [500, 500, 200]}
    assert [d.webhook_id for d in events] == ["msg_1", "msg_2"]
    assert [d.attempt for d in events] == [3, 3]
    assert [d.status for d in receiver.attempts("msg_1")] == [500, 500, 200]
    assert receiver.duplicates == {}  # retries of a failed delivery are not duplicates


async def test_fail_first_takes_a_status() -> None:
    body = event()
    async with WebhookReceiver(SECRET) as receiver:
        receiver.fail_first(1, status=503)
        first = await post(receiver, body, signed("msg_1", body))
        second = await post(receiver, body, signed("msg_1", body))

    assert (first.status_code, second.status_code) == (503, 200)


async def test_redeliveries_of_an_accepted_id_are_counted_as_duplicates() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        for msg_id in ["msg_1", "msg_2", "msg_1", "msg_1", "msg_3"]:
            body = event(id=msg_id)
            assert (await post(receiver, body, signed(msg_id, body))).status_code == 200

    assert [d.webhook_id for d in receiver.events()] == ["msg_1", "msg_2", "msg_3"]
    assert list(receiver.by_id) == ["msg_1", "msg_2", "msg_3"]
    assert receiver.by_id["msg_1"].attempt == 1
    assert receiver.duplicates == {"msg_1": 2}
    assert len(receiver.received) == 5


async def test_a_rotated_pair_of_signatures_is_accepted_when_one_matches() -> None:
    body = event()
    headers = signed("msg_r", body)
    old = Webhook(OTHER).sign("msg_r", datetime.now(UTC), body.decode())
    for signature in [f"{old} {headers['webhook-signature']}", f"{headers['webhook-signature']} {old}"]:
        async with WebhookReceiver(SECRET) as receiver:
            answer = await post(receiver, body, {**headers, "webhook-signature": signature})
        assert answer.status_code == 200
        assert receiver.by_id["msg_r"].signature == signature


async def test_a_receiver_with_two_secrets_accepts_either() -> None:
    async with WebhookReceiver(OTHER, SECRET) as receiver:
        for msg_id, secret in [("msg_1", SECRET), ("msg_2", OTHER)]:
            body = event()
            assert (await post(receiver, body, signed(msg_id, body, secret=secret))).status_code == 200
        stranger = "whsec_" + base64.b64encode(b"a-stranger-secret-0123456789abcd").decode()
        body = event()
        assert (await post(receiver, body, signed("msg_3", body, secret=stranger))).status_code == 400

    assert list(receiver.by_id) == ["msg_1", "msg_2"]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (410, {}),
        (302, {"location": "https://elsewhere.example/hook"}),
        (429, {"retry-after": "7"}),
        (503, {}),
    ],
)
async def test_respond_answers_every_request_as_told(status: int, headers: dict[str, str]) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        receiver.respond(status, headers=headers)
        for msg_id in ["msg_1", "msg_2"]:
            body = event()
            answer = await post(receiver, body, signed(msg_id, body))
            assert answer.status_code == status
            assert {k: answer.headers[k] for k in headers} == headers

    assert [d.status for d in receiver.received] == [status, status]
    assert all(d.verified for d in receiver.received)
    assert receiver.events() == []


async def test_respond_with_a_large_body_and_then_recover() -> None:
    body = event()
    async with WebhookReceiver(SECRET) as receiver:
        receiver.respond(500, body=b"x" * 5000)
        failed = await post(receiver, body, signed("msg_1", body))
        receiver.recover()
        recovered = await post(receiver, body, signed("msg_1", body))

    assert failed.status_code == 500 and failed.content == b"x" * 5000
    assert recovered.status_code == 200 and recovered.text == "ok"
    assert [d.webhook_id for d in receiver.events()] == ["msg_1"]


async def test_respond_a_number_of_times() -> None:
    async with WebhookReceiver(SECRET) as receiver:
        receiver.respond(429, headers={"retry-after": "1"}, times=2)
        statuses = []
        for _ in range(3):
            body = event()
            statuses.append((await post(receiver, body, signed("msg_1", body))).status_code)

    assert statuses == [429, 429, 200]


async def test_a_delayed_receiver_holds_up_no_other() -> None:
    body = event()
    async with WebhookReceiver(SECRET) as slow, WebhookReceiver(SECRET) as fast:
        slow.delay(1.0)
        started = time.monotonic()
        slow_answer = asyncio.create_task(post(slow, body, signed("msg_slow", body)))
        fast_answer = await post(fast, body, signed("msg_fast", body))
        fast_took = time.monotonic() - started
        assert not slow_answer.done()
        assert (await slow_answer).status_code == 200
        slow_took = time.monotonic() - started

    assert fast_answer.status_code == 200
    assert fast_took < 0.5
    assert slow_took >= 1.0
    assert list(slow.by_id) == ["msg_slow"] and list(fast.by_id) == ["msg_fast"]


async def test_a_delay_times_out_a_client_and_stopping_cuts_it_short() -> None:
    body = event()
    receiver = WebhookReceiver(SECRET)
    async with receiver:
        receiver.delay(30)
        async with httpx.AsyncClient(timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(receiver.url, content=body, headers=signed("msg_1", body))
        started = time.monotonic()
    assert time.monotonic() - started < 3


async def test_wait_for_wakes_when_events_arrive_and_times_out_otherwise() -> None:
    async with WebhookReceiver(SECRET) as receiver:

        async def deliver_later() -> None:
            await asyncio.sleep(0.2)
            for msg_id in ["msg_1", "msg_2"]:
                body = event()
                await post(receiver, body, signed(msg_id, body))

        sender = asyncio.create_task(deliver_later())
        started = time.monotonic()
        events = await receiver.wait_for(2, timeout=5)
        assert time.monotonic() - started < 2
        await sender
        assert [d.webhook_id for d in events] == ["msg_1", "msg_2"]

        with pytest.raises(TimeoutError, match=r"no 3 events within 0\.1s; received 2 requests"):
            await receiver.wait_for(3, timeout=0.1)
        assert len(await receiver.wait_for_requests(2, timeout=0.1)) == 2


def test_it_works_without_an_event_loop() -> None:
    body = event()
    with WebhookReceiver(SECRET) as receiver:
        receiver.fail_first(1)
        assert httpx.post(receiver.url, content=body, headers=signed("msg_1", body)).status_code == 500
        assert len(receiver.wait_for_requests_sync(1, timeout=1)) == 1
        with pytest.raises(TimeoutError):
            receiver.wait_for_sync(1, timeout=0.05)
        assert httpx.post(receiver.url, content=body, headers=signed("msg_1", body)).status_code == 200
        [delivery] = receiver.wait_for_sync(1, timeout=1)
    assert delivery.attempt == 2


def test_any_path_under_the_receiver_is_served() -> None:
    body = event()
    with WebhookReceiver(SECRET) as receiver:
        answer = httpx.post(receiver.url + "/tenant-7", content=body, headers=signed("msg_1", body))
    assert answer.status_code == 200
    assert receiver.by_id["msg_1"].path == "/webhooks/tenant-7"


def test_a_receiver_needs_a_valid_secret() -> None:
    with pytest.raises(ValueError):
        WebhookReceiver()
    with pytest.raises(Exception):  # noqa: B017 - the library's own error for an empty secret
        WebhookReceiver("whsec_")


def test_starting_and_stopping_is_fast() -> None:
    started = time.monotonic()
    for _ in range(3):
        with WebhookReceiver(SECRET) as receiver:
            assert receiver.url.startswith("http://127.0.0.1:")
    assert time.monotonic() - started < 3
    with pytest.raises(RuntimeError):
        _ = receiver.url  # stopped
