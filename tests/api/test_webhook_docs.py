"""The webhooks reachout sends, as documented: every delivered type in the OpenAPI document and in
docs/webhooks.md, each with a sample its own schema takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reachout.api.webhooks import DATA_FOR, sample
from reachout.events.types import DELIVERED_TYPES, DESCRIPTIONS, EventType, subject_of
from tests.support.service import Service

GUIDE = Path(__file__).parents[2] / "docs" / "webhooks.md"


@pytest.mark.parametrize("event_type", DELIVERED_TYPES)
def test_each_sample_is_a_payload_of_its_type(event_type: EventType) -> None:
    payload = sample(event_type)
    assert payload["type"] == event_type.value and set(payload) == {"type", "timestamp", "data"}
    DATA_FOR[subject_of(event_type)].model_validate(payload["data"])


async def test_the_openapi_document_declares_every_delivered_type(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    webhooks = document["webhooks"]
    assert sorted(webhooks) == sorted(t.value for t in DELIVERED_TYPES)
    for name, item in webhooks.items():
        body = item["post"]["requestBody"]["content"]["application/json"]
        assert body["example"] == sample(EventType(name))
        assert "webhook-signature" in item["post"]["description"]


def test_the_guide_lists_every_type_with_its_sample() -> None:
    guide = GUIDE.read_text()
    for event_type in DELIVERED_TYPES:
        assert f"`{event_type.value}`" in guide and DESCRIPTIONS[event_type] in guide, event_type
    for event_type in (
        EventType.MESSAGE_DELIVERED,
        EventType.CONVERSATION_ENDED,
        EventType.CONTACT_OPTED_OUT,
    ):
        assert json.dumps(sample(event_type), indent=2, ensure_ascii=False) in guide, event_type
