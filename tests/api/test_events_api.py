"""reachout's own API: the event log, attempts, replay, recovery and enabling, scoped to the key's account."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reachout.kit.clock import FakeClock, iso_utc
from tests.support.chat import Chat, greet
from tests.support.polyai import EXAMPLE, PATH
from tests.support.provisioning import API_KEY, OTHER_API_KEY, POLYAI_HEADERS, SENDER
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import near_real_clock

OURS = {"Authorization": f"Bearer {API_KEY}"}
THEIRS = {"Authorization": f"Bearer {OTHER_API_KEY}"}
GREETING = [
    "conversation.started",
    "message.queued",
    "message.sending",
    "message.sent",
    "message.delivered",
]


@pytest.fixture
def clock() -> FakeClock:
    return near_real_clock()


async def delivered_greeting(chat: Chat) -> None:
    """The PolyAI reference greeting, delivered to the handset, its events to the endpoint."""
    await greet(chat)
    await chat.settle(5)


async def get(chat: Chat, path: str, headers: dict[str, str] = OURS, **params: Any) -> httpx.Response:
    return await chat.service.client.get(path, params=params, headers=headers)


async def listed(chat: Chat, **params: Any) -> list[dict[str, Any]]:
    response = await get(chat, "/api/v1/events", **params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_the_log_lists_an_account_s_events_newest_first_and_filters_them(webhooked: Chat) -> None:
    await delivered_greeting(webhooked)
    events = await listed(webhooked)
    assert [e["type"] for e in reversed(events)] == GREETING
    [conversation_id] = {e["conversation_id"] for e in events}
    assert [e["type"] for e in await listed(webhooked, type="message.*", order="asc")] == GREETING[1:]
    assert [e["type"] for e in await listed(webhooked, type="conversation.started,message.delivered")] == [
        "message.delivered",
        "conversation.started",
    ]
    assert len(await listed(webhooked, conversation_id=conversation_id)) == len(GREETING)
    message_id = events[0]["message_id"]
    assert len(await listed(webhooked, message_id=message_id)) == len(GREETING) - 1
    assert await listed(webhooked, project_id="empty") == []
    later = iso_utc(webhooked.clock.now())
    assert await listed(webhooked, since=later) == []
    assert len(await listed(webhooked, until=later)) == len(GREETING)
    response = await get(webhooked, "/api/v1/events", headers=THEIRS)
    assert response.json() == {"data": [], "has_more": False, "next_cursor": None}


async def test_a_cursor_pages_through_the_log_either_way(webhooked: Chat) -> None:
    await delivered_greeting(webhooked)
    for order, expected in (("desc", list(reversed(GREETING))), ("asc", GREETING)):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": 2, "order": order} | ({"cursor": cursor} if cursor else {})
            page = (await get(webhooked, "/api/v1/events", **params)).json()
            seen.extend(e["type"] for e in page["data"])
            cursor = page["next_cursor"]
            assert page["has_more"] is (cursor is not None)
            if cursor is None:
                break
        assert seen == expected


async def test_an_event_is_read_by_id_but_never_by_another_account(webhooked: Chat) -> None:
    await delivered_greeting(webhooked)
    [event] = await listed(webhooked, type="message.delivered")
    response = await get(webhooked, f"/api/v1/events/{event['id']}")
    assert response.status_code == 200 and response.json() == event
    assert event["data"]["status"] == "delivered" and event["data"]["from"] == SENDER
    for path in (f"/api/v1/events/{event['id']}", f"/api/v1/events/{event['id']}/attempts"):
        other = await get(webhooked, path, headers=THEIRS)
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "NOT_FOUND"
    missing = await get(webhooked, "/api/v1/events/01a23c87-0000-7000-8000-000000000000")
    assert missing.status_code == 404
    for headers in ({}, {"Authorization": "Bearer rk_nobody_at_all_0123456789"}):
        refused = await get(webhooked, "/api/v1/events", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_attempts_say_what_each_answer_was(webhooked: Chat, receiver: WebhookReceiver) -> None:
    receiver.fail_first(1, body=b"x" * 5000)
    await delivered_greeting(webhooked)
    await webhooked.settle(10)
    [event] = await listed(webhooked, type="conversation.started")
    attempts = (await get(webhooked, f"/api/v1/events/{event['id']}/attempts")).json()["data"]
    assert [(a["status_code"], a["error"]) for a in attempts] == [(200, None), (500, "500")]
    failed = attempts[1]
    assert failed["response_body"] == "x" * 2048 and failed["latency_ms"] >= 0
    assert failed["url"] == receiver.url and attempts[0]["response_body"] == "ok"
    [endpoint] = (await get(webhooked, "/api/v1/webhooks")).json()["data"]
    assert attempts[0]["endpoint_id"] == endpoint["id"]
    filtered = await get(webhooked, f"/api/v1/events/{event['id']}/attempts", endpoint_id="nope")
    assert filtered.json()["data"] == []
    by_endpoint = (await get(webhooked, f"/api/v1/webhooks/{endpoint['id']}/attempts", limit=3)).json()[
        "data"
    ]
    assert len(by_endpoint) == 3 and by_endpoint[0]["id"] > by_endpoint[-1]["id"]
    older = await get(webhooked, f"/api/v1/webhooks/{endpoint['id']}/attempts", before=by_endpoint[-1]["id"])
    assert all(a["id"] < by_endpoint[-1]["id"] for a in older.json()["data"])
    assert (
        await get(webhooked, f"/api/v1/webhooks/{endpoint['id']}/attempts", headers=THEIRS)
    ).status_code == 404


async def test_a_replay_is_delivered_again_under_the_same_webhook_id(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    await delivered_greeting(webhooked)
    [event] = await listed(webhooked, type="message.delivered")
    client = webhooked.service.client
    other = await client.post(f"/api/v1/events/{event['id']}/replay", headers=THEIRS)
    assert other.status_code == 404
    replayed = await client.post(f"/api/v1/events/{event['id']}/replay", headers=OURS)
    assert replayed.status_code == 202
    [endpoint] = (await get(webhooked, "/api/v1/webhooks")).json()["data"]
    assert replayed.json() == {"event_id": event["id"], "endpoints": [endpoint["id"]]}
    await webhooked.settle(1)
    assert receiver.duplicates == {event["id"]: 1}
    again = [d for d in receiver.received if d.webhook_id == event["id"]]
    assert len(again) == 2 and again[0].raw == again[1].raw
    named = await client.post(
        f"/api/v1/events/{event['id']}/replay", json={"endpoint_id": endpoint["id"]}, headers=OURS
    )
    assert named.status_code == 202 and named.json()["endpoints"] == [endpoint["id"]]


async def test_a_410_disables_the_endpoint_until_it_is_enabled_and_recovered(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    started = iso_utc(webhooked.clock.now())
    receiver.respond(410, times=1)
    await delivered_greeting(webhooked)
    [endpoint] = (await get(webhooked, "/api/v1/webhooks")).json()["data"]
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "the endpoint answered 410 Gone")
    assert endpoint["disabled_at"] is not None
    received = len(receiver.received)
    response = await webhooked.service.client.post(
        PATH, json=EXAMPLE | {"agent_number": SENDER}, headers=POLYAI_HEADERS
    )
    assert response.status_code == 202
    await webhooked.settle(5)
    assert len(receiver.received) == received, "a disabled endpoint is sent nothing"

    client = webhooked.service.client
    assert (await client.post(f"/api/v1/webhooks/{endpoint['id']}/enable", headers=THEIRS)).status_code == 404
    enabled = await client.post(f"/api/v1/webhooks/{endpoint['id']}/enable", headers=OURS)
    assert enabled.status_code == 200
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)
    body = {"endpoint_id": endpoint["id"], "since": started}
    assert (await client.post("/api/v1/webhooks/recover", json=body, headers=THEIRS)).status_code == 404
    recovered = await client.post("/api/v1/webhooks/recover", json=body, headers=OURS)
    assert recovered.status_code == 202
    await webhooked.settle(5)
    logged = {e["id"] for e in await listed(webhooked, limit=100)}
    assert set(receiver.by_id) == logged, "every event, the 410's own and those it missed, at last"
    assert recovered.json()["queued"] == len(logged) - (received - 1)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"limit": "9" * 5000}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "time zone"),
        ({"type": "message.sned"}, "type"),
        ({"order": "sideways"}, "order"),
        ({"cursor": "x" * 500}, "cursor"),
    ],
)
async def test_a_bad_parameter_is_a_400_that_says_which(
    webhooked: Chat, params: dict[str, str], problem: str
) -> None:
    response = await get(webhooked, "/api/v1/events", **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and problem in error["message"]


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'{"endpoint_id": 5, "since": "2026-01-01T00:00:00Z"}', b'{"endpoint_id": "e"}']
)
async def test_a_bad_body_is_a_400(webhooked: Chat, body: bytes) -> None:
    response = await webhooked.service.client.post("/api/v1/webhooks/recover", content=body, headers=OURS)
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/a%00b",
        "/api/v1/events/a%00b/attempts",
        "/api/v1/webhooks/a%00b/attempts",
        "/api/v1/events/not-an-id",
    ],
)
async def test_an_id_reachout_never_gives_is_a_404(webhooked: Chat, path: str) -> None:
    response = await get(webhooked, path)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


async def test_an_endpoint_id_reachout_never_gives_names_nothing(webhooked: Chat) -> None:
    await delivered_greeting(webhooked)
    [event] = await listed(webhooked, type="conversation.started")
    client = webhooked.service.client
    attempts = await get(webhooked, f"/api/v1/events/{event['id']}/attempts", endpoint_id="a\x00b")
    assert attempts.status_code == 200 and attempts.json()["data"] == []
    for path, body in (
        (f"/api/v1/events/{event['id']}/replay", {"endpoint_id": "a\x00b"}),
        ("/api/v1/webhooks/recover", {"endpoint_id": "a\x00b", "since": "2026-01-01T00:00:00Z"}),
        ("/api/v1/webhooks/a%00b/enable", None),
    ):
        response = await client.post(path, json=body, headers=OURS)
        assert response.status_code == 404, (path, response.text)
