"""The Bland dialect's conversation reads: `{data, errors}`, pagination, sorting, filters, account scoping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reachout.kit.clock import FakeClock
from tests.support.chat import (
    USE_CASE_TEXT,
    Chat,
    ScriptedAgent,
    chat_on,
    send_through_use_case,
    use_case_chat_document,
)
from tests.support.polyai import EXAMPLE
from tests.support.provisioning import API_KEY, OTHER_API_KEY, POLYAI_HEADERS, SENDER, USER

BLAND = {"authorization": API_KEY}
OTHER_USER = "+14155552000"


async def greet(chat: Chat, user: str = USER) -> None:
    body = EXAMPLE | {"user_number": user, "agent_number": SENDER}
    assert (
        await chat.service.client.post("/v1/outbound-sms", json=body, headers=POLYAI_HEADERS)
    ).status_code == 202
    await chat.settle(2)


async def listing(chat: Chat, headers: dict[str, str] = BLAND, **params: Any) -> Any:
    response = await chat.service.client.get("/v1/sms/conversations", params=params, headers=headers)
    return response.status_code, response.json()


async def test_the_list_is_the_callers_conversations_in_blands_envelope(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I move it?")
    await chat.settle()
    code, body = await listing(chat)
    assert code == 200 and body["errors"] is None
    [conversation] = body["data"]
    assert conversation["id"].startswith("convo_")
    assert (conversation["user_number"], conversation["agent_number"]) == (USER, SENDER)
    assert conversation["is_active"] is True
    assert conversation["message_count"] == 3
    assert conversation["last_message"] == "you said: Can I move it?"
    assert body["extra"]["pagination"] == {"totalItems": 1, "totalPages": 1, "currentPage": 1, "pageSize": 25}
    code, other = await listing(chat, headers={"authorization": OTHER_API_KEY})
    assert (code, other["data"]) == (200, [])


async def test_pages_sorting_and_filters(chat: Chat) -> None:
    for n in range(3):
        await greet(chat, f"+141555520{n:02d}")
        chat.clock.advance(60)
    _, first = await listing(chat, pageSize=2)
    assert [c["user_number"] for c in first["data"]] == ["+14155552002", "+14155552001"]  # newest first
    assert first["extra"]["pagination"] == {"totalItems": 3, "totalPages": 2, "currentPage": 1, "pageSize": 2}
    _, second = await listing(chat, pageSize=2, page=2)
    assert [c["user_number"] for c in second["data"]] == ["+14155552000"]
    _, ascending = await listing(chat, sortBy="user_number", sortDir="asc")
    assert [c["user_number"] for c in ascending["data"]] == ["+14155552000", "+14155552001", "+14155552002"]
    filters = [{"field": "user_number", "operator": "endsWith", "value": "01"}]
    _, filtered = await listing(chat, filters=json.dumps(filters))
    assert [c["user_number"] for c in filtered["data"]] == ["+14155552001"]
    inactive = [{"field": "is_active", "operator": "eq", "value": False}]
    _, none = await listing(chat, filters=json.dumps(inactive))
    assert none["data"] == [] and none["extra"]["pagination"]["totalItems"] == 0


async def test_a_conversation_with_its_messages(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I move it?")
    await chat.settle()
    _, body = await listing(chat)
    conversation_id = body["data"][0]["id"]
    response = await chat.service.client.get(f"/v1/sms/conversations/{conversation_id}", headers=BLAND)
    assert response.status_code == 200
    data = response.json()["data"]
    assert [(m["sender"], m["message"]) for m in data["messages"]] == [
        ("AGENT", EXAMPLE["message"]),
        ("USER", "Can I move it?"),
        ("AGENT", "you said: Can I move it?"),
    ]
    assert data["messages"][0]["status"] == "delivered" and data["messages"][0]["error_code"] is None
    assert data["messages"][1]["from"] == USER and data["messages"][1]["to"] == SENDER


@pytest.mark.parametrize(
    ("replies", "answer"),
    [("project", [("AGENT", "you said: Is this a sale?")]), ("none", [])],
)
async def test_a_reply_to_a_use_case_text_reads_with_that_text_first(
    database_url: str,
    clock: FakeClock,
    agent: ScriptedAgent,
    replies: str,
    answer: list[tuple[str, str]],
) -> None:
    async with chat_on(database_url, clock, agent, use_case_chat_document(replies)) as chat:
        await send_through_use_case(chat)
        await chat.text("Is this a sale?")
        await chat.settle()
        _, body = await listing(chat)
        [conversation] = body["data"]
        assert conversation["message_count"] == 2 + len(answer)
        response = await chat.service.client.get(f"/v1/sms/conversations/{conversation['id']}", headers=BLAND)
        messages = response.json()["data"]["messages"]
        assert [(m["sender"], m["message"]) for m in messages] == [
            ("AGENT", USE_CASE_TEXT),
            ("USER", "Is this a sale?"),
            *answer,
        ]
        assert (messages[0]["from"], messages[0]["to"], messages[0]["status"]) == (SENDER, USER, "delivered")


async def test_another_accounts_conversation_is_not_found(chat: Chat) -> None:
    await greet(chat)
    _, body = await listing(chat)
    conversation_id = body["data"][0]["id"]
    for cid, headers in ((conversation_id, {"authorization": OTHER_API_KEY}), ("convo_nope", BLAND)):
        response = await chat.service.client.get(f"/v1/sms/conversations/{cid}", headers=headers)
        assert response.status_code == 404
        assert response.json()["data"] is None
        assert response.json()["errors"][0]["error"] == "NOT_FOUND"


@pytest.mark.parametrize("headers", [{}, {"authorization": "rk_wrong_key_0000"}])
async def test_a_missing_or_wrong_key_is_401_in_blands_shape(chat: Chat, headers: dict[str, str]) -> None:
    code, body = await listing(chat, headers=headers)
    assert code == 401
    assert body["data"] is None and body["errors"][0]["error"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"page": "0"}, "page"),
        ({"pageSize": "many"}, "pageSize"),
        ({"pageSize": "5000"}, "pageSize"),
        ({"sortBy": "colour"}, "sortBy"),
        ({"sortDir": "sideways"}, "sortDir"),
        ({"filters": "not json"}, "filters"),
        ({"filters": json.dumps({"field": "user_number"})}, "filters"),
        ({"filters": json.dumps([{"field": "mood", "operator": "eq", "value": 1}])}, "filters[0].field"),
        ({"filters": json.dumps([{"field": "is_active", "operator": "gt", "value": True}])}, "is_active"),
        ({"filters": json.dumps([{"field": "message_count", "operator": "gt", "value": "lots"}])}, "number"),
        ({"filters": json.dumps([{"field": "created_at", "operator": "gt", "value": "yesterday"}])}, "ISO"),
    ],
)
async def test_a_bad_query_is_400_with_a_message(chat: Chat, params: dict[str, str], words: str) -> None:
    code, body = await listing(chat, **params)
    assert code == 400 and body["data"] is None
    assert body["errors"][0]["error"] == "INVALID_REQUEST" and words in body["errors"][0]["message"]


@pytest.mark.parametrize("operator", ["eq", "contains", "startsWith", "endsWith"])
async def test_the_current_node_filter_reads_the_agents_state(chat: Chat, operator: str) -> None:
    await greet(chat)
    await chat.text("hello")
    await chat.settle()
    filters = [{"field": "current_node_id", "operator": operator, "value": "no-such-node"}]
    code, body = await listing(chat, filters=json.dumps(filters))
    assert (code, body["data"]) == (200, [])
