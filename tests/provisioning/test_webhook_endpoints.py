"""A project's `webhooks:` in the provisioning file: checked when parsed, applied by url, removed if gone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from reachout.db.engine import Database
from reachout.events.models import WebhookEndpoint
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.provisioning.loader import ProvisioningError
from tests.support.provisioning import standard_document
from tests.support.webhooks import SECRET

NEXT = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="


def with_webhooks(*webhooks: dict[str, Any]) -> dict[str, Any]:
    document = standard_document()
    document["accounts"][0]["projects"][0]["webhooks"] = list(webhooks)
    return document


@pytest.mark.parametrize(
    ("webhook", "problem"),
    [
        ({"url": "ftp://example.com/x", "secret": SECRET}, "http:// or https://"),
        ({"url": "/relative", "secret": SECRET}, "http:// or https://"),
        ({"url": "http://[::1/", "secret": SECRET}, "valid URL"),
        ({"url": "https://example.com", "secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "whsec_"),
        ({"url": "https://example.com", "secret": "whsec_c2hvcnQ="}, "24 bytes"),
        ({"url": "https://example.com", "secret": []}, "at least one secret"),
        ({"url": "https://example.com", "secret": SECRET, "events": ["message.sned"]}, "no event type"),
    ],
)
def test_a_bad_endpoint_is_refused_naming_why(webhook: dict[str, Any], problem: str) -> None:
    with pytest.raises(ProvisioningError, match=problem):
        loader.parse(with_webhooks(webhook), "test.yaml")


def test_an_endpoint_listed_twice_is_refused() -> None:
    endpoint = {"url": "https://example.com/hooks", "secret": SECRET}
    with pytest.raises(ProvisioningError, match="webhook url"):
        loader.parse(with_webhooks(endpoint, endpoint), "test.yaml")


async def endpoints(database: Database) -> list[WebhookEndpoint]:
    async with database.read() as session:
        return list((await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.url))).scalars())


async def apply(database: Database, document: dict[str, Any], clock: FakeClock) -> None:
    async with database.write.begin() as session:
        await provisioning.apply(session, loader.parse(document, "test.yaml"), clock.now())


async def test_endpoints_are_applied_by_url_and_removed_when_left_out(
    database: Database, clock: FakeClock
) -> None:
    first = {"url": "https://a.example.com/hooks", "secret": SECRET, "events": ["message.*"]}
    second = {"url": "https://b.example.com/hooks", "secret": [NEXT, SECRET]}
    await apply(database, with_webhooks(first, second), clock)
    a, b = await endpoints(database)
    assert (a.secrets, a.event_types, b.secrets, b.event_types) == (
        [SECRET],
        ["message.*"],
        [NEXT, SECRET],
        [],
    )
    async with database.write.begin() as session:  # an operator's state, which the file does not set
        (await session.get(WebhookEndpoint, a.id)).enabled = False  # type: ignore[union-attr]
    await apply(database, with_webhooks(first | {"events": []}), clock)
    [kept] = await endpoints(database)
    assert (kept.id, kept.event_types, kept.enabled) == (a.id, [], False)
    await apply(database, with_webhooks(), clock)
    assert await endpoints(database) == []
