"""Bland's conversation reads under hostile input: what the database cannot bind, what would make unbounded
work, what cannot be an id. Each was a 500 (or worse) when probed from outside; each is now a 400 in Bland's
envelope that says what is wrong (not found stays 404), the database unchanged, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from reachout.conversations.listing import (
    LARGEST_INT,
    MAX_FILTERS,
    OPERATORS_FOR,
    FilterField,
)
from reachout.conversations.models import Conversation
from reachout.conversations.schemas import could_be_conversation_id, new_conversation_id
from reachout.dialects import bland_schemas
from reachout.messaging.models import Message
from tests.support.polyai import EXAMPLE
from tests.support.provisioning import API_KEY, POLYAI_HEADERS, USER
from tests.support.service import Service

BLAND = {"authorization": API_KEY}
LIST = "/v1/sms/conversations"


def one(field: str, operator: str, value: Any) -> str:
    """`filters` with one condition, JSON-encoded as Bland's clients send it."""
    return json.dumps([{"field": field, "operator": operator, "value": value}])


async def greet(service: Service) -> None:
    response = await service.client.post("/v1/outbound-sms", json=EXAMPLE, headers=POLYAI_HEADERS)
    assert response.status_code == 202


async def snapshot(service: Service) -> tuple[list[Any], list[Any]]:
    """Every conversation and message row as the database holds it."""
    async with service.runtime.database.read() as session:
        conversations = (await session.execute(select(Conversation).order_by(Conversation.id))).scalars()
        messages = (await session.execute(select(Message).order_by(Message.id))).scalars()
        return (
            [(c.id, c.status, c.last_activity_at, c.ended_at) for c in conversations],
            [(m.id, m.status, m.updated_at) for m in messages],
        )


@contextmanager
def statements(service: Service) -> Iterator[list[str]]:
    """The SQL the read engine runs inside the block."""
    seen: list[str] = []
    engine = service.runtime.database.reader_engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def refused(service: Service, path: str, params: dict[str, str], status: int, words: str) -> str:
    """Ask with a seeded conversation in place; the answer is `status` in Bland's envelope naming `words`,
    and nothing changed. Returns the message."""
    await greet(service)
    before = await snapshot(service)
    response = await service.client.get(path, params=params, headers=BLAND)
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() == {"data", "errors"} and body["data"] is None
    [error] = body["errors"]
    assert error["error"] == ("NOT_FOUND" if status == 404 else "INVALID_REQUEST")
    assert words in error["message"], error["message"]
    assert await snapshot(service) == before
    return str(error["message"])


# --- the findings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["2", "368934881474191034", str(LARGEST_INT)])
async def test_a_page_past_the_last_is_empty_with_the_totals_and_no_offset(
    service: Service, page: str
) -> None:
    """368934881474191034 x 25 overflowed the OFFSET (SQLite: "Python int too large", PostgreSQL: int64)."""
    await greet(service)
    with statements(service) as seen:
        response = await service.client.get(LIST, params={"page": page}, headers=BLAND)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == [] and body["errors"] is None
    assert body["extra"]["pagination"] == {
        "totalItems": 1,
        "totalPages": 1,
        "currentPage": int(page),
        "pageSize": 25,
    }
    assert not [s for s in seen if "OFFSET" in s.upper()], "a page past the last needs no rows query"


async def test_a_page_beyond_64_bits_is_refused(service: Service) -> None:
    await refused(service, LIST, {"page": str(LARGEST_INT + 1)}, 400, "page must be at least 1 and at most")


@pytest.mark.parametrize("value", [LARGEST_INT + 1, -(2**63) - 1, 10**40])
async def test_a_message_count_beyond_64_bits_is_refused(service: Service, value: int) -> None:
    filters = one("message_count", "gt", value)
    await refused(service, LIST, {"filters": filters}, 400, "filters[0].value must be a whole number from")


@pytest.mark.parametrize(("operator", "value"), [("lt", 2**31), ("lt", LARGEST_INT), ("gte", -(2**63))])
async def test_a_message_count_within_64_bits_is_compared(
    service: Service, operator: str, value: int
) -> None:
    """PostgreSQL bound the count's value as a 32-bit INTEGER: 2**31 was a 500 there."""
    await greet(service)
    response = await service.client.get(
        LIST, params={"filters": one("message_count", operator, value)}, headers=BLAND
    )
    assert response.status_code == 200, response.text
    assert [c["user_number"] for c in response.json()["data"]] == [USER]


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-00:01"],
)
@pytest.mark.parametrize("field", ["created_at", "updated_at"])
async def test_a_moment_outside_datetimes_range_in_utc_is_refused(
    service: Service, field: str, moment: str
) -> None:
    filters = one(field, "gt", moment)
    await refused(service, LIST, {"filters": filters}, 400, "must fall between 0001-01-01T00:00:00Z and 9999")


async def test_the_extremes_in_utc_are_compared(service: Service) -> None:
    await greet(service)
    filters = json.dumps(
        [
            {"field": "created_at", "operator": "gt", "value": "0001-01-01T00:00:00Z"},
            {"field": "updated_at", "operator": "lt", "value": "9999-12-31T23:59:59.999999+00:00"},
        ]
    )
    response = await service.client.get(LIST, params={"filters": filters}, headers=BLAND)
    assert response.status_code == 200, response.text
    assert [c["user_number"] for c in response.json()["data"]] == [USER]


@pytest.mark.parametrize("opening", ["[" * 1000, "[" * 1000 + "]" * 1000, '[{"value": ' + "{" * 50])
async def test_deeply_nested_filters_are_refused_before_parsing(service: Service, opening: str) -> None:
    """A thousand levels were a RecursionError in json.loads."""
    await refused(service, LIST, {"filters": opening}, 400, "filters must not nest deeper than 4 levels")


@pytest.mark.parametrize("field", ["user_number", "agent_number", "current_node_id"])
@pytest.mark.parametrize("value", ["+1415\x00", "\x00"])
async def test_a_nul_in_a_filter_value_is_refused(service: Service, field: str, value: str) -> None:
    """PostgreSQL's text cannot hold a NUL: it was a 500 there ("invalid byte sequence for encoding")."""
    filters = one(field, "contains", value)
    await refused(service, LIST, {"filters": filters}, 400, "filters[0].value must not contain a NUL")


@pytest.mark.parametrize("field", ["user_number", "agent_number", "current_node_id"])
async def test_a_lone_surrogate_in_a_filter_value_is_refused(service: Service, field: str) -> None:
    """JSON's `\\ud800` decodes to a string no driver can encode as UTF-8: a 500 on both backends."""
    filters = '[{"field": "' + field + '", "operator": "eq", "value": "+1\\ud800"}]'
    await refused(service, LIST, {"filters": filters}, 400, "filters[0].value must be valid Unicode text")


async def test_more_filters_than_the_limit_are_refused(service: Service) -> None:
    conditions = [{"field": "user_number", "operator": "contains", "value": "1"}] * (MAX_FILTERS + 1)
    params = {"filters": json.dumps(conditions)}
    await refused(service, LIST, params, 400, f"filters must hold at most {MAX_FILTERS} conditions")


async def test_filters_longer_than_the_limit_are_refused(service: Service) -> None:
    filters = one("user_number", "contains", "1" * 9000)
    await refused(service, LIST, {"filters": filters}, 400, "filters must be at most 8192 characters")


@pytest.mark.parametrize("raw", ["\u0661", "1_0", "+1", " 1"])
@pytest.mark.parametrize("name", ["page", "pageSize"])
async def test_a_page_number_is_ascii_digits(service: Service, name: str, raw: str) -> None:
    """int() takes Arabic-Indic digits, underscores, signs and spaces; the parameters take digits."""
    await refused(service, LIST, {name: raw}, 400, f"{name} must be a whole number (digits only)")


@pytest.mark.parametrize(
    "conversation_id",
    ["%00", "convo_%00", "convo_0123456789abcdef0123456%00", "%ED%A0%80", "convo_nope", "x" * 2000],
    ids=["nul", "prefix-nul", "nul-as-24th-digit", "surrogate-bytes", "not-hex", "2000-chars"],
)
async def test_what_cannot_be_a_conversation_id_is_not_found_without_a_query(
    service: Service, conversation_id: str
) -> None:
    """A NUL in the path reached PostgreSQL, a 500 there; no such text is looked up at all now."""
    with statements(service) as seen:
        await refused(service, f"{LIST}/{conversation_id}", {}, 404, "not found")
    assert not [s for s in seen if "FROM conversations" in s and "conversations.id =" in s]


async def test_a_well_formed_unknown_id_is_looked_up_and_not_found(service: Service) -> None:
    with statements(service) as seen:
        await refused(service, f"{LIST}/{new_conversation_id()}", {}, 404, "not found")
    assert [s for s in seen if "FROM conversations" in s]


def test_the_documented_conditions_are_the_ones_parsed() -> None:
    """Each field appears in one kind of condition of the OpenAPI document, with the operators it takes."""
    [filters] = [p for p in bland_schemas.LIST_PARAMETERS if p["name"] == "filters"]
    kinds = filters["content"]["application/json"]["schema"]["items"]["anyOf"]
    declared = {
        field: frozenset(kind["properties"]["operator"]["enum"])
        for kind in kinds
        for field in kind["properties"]["field"]["enum"]
    }
    assert declared == {f.value: frozenset(o.value for o in OPERATORS_FOR[f]) for f in FilterField}


def test_every_new_conversation_id_has_the_shape_the_reads_accept() -> None:
    assert all(could_be_conversation_id(new_conversation_id()) for _ in range(1000))
    assert not could_be_conversation_id("convo_0123456789ABCDEF01234567")  # hex digits are lower case
