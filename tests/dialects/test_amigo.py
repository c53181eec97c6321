"""The Amigo dialect: `POST /v1/sms/` through a use case, each row of the page's error table, and the status
lifecycle seen through `GET /v1/sms/{id}` on the sandbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from tests.support.provisioning import (
    API_KEY,
    OTHER_API_KEY,
    OTHER_USE_CASE,
    POOL,
    USE_CASE,
    use_case_document,
)
from tests.support.service import Service, in_process, make_settings

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
RECIPIENT = "+14155551234"


@pytest.fixture
async def amigo(service: Service) -> Service:
    await service.provision(use_case_document())
    return service


async def send(service: Service, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    payload = {"use_case_id": USE_CASE, "to_phone_number": RECIPIENT, "message": "Your appointment is at 3pm"}
    headers = HEADERS if headers is None else headers
    return await service.client.post("/v1/sms/", json=payload | body, headers=headers)


async def get(service: Service, message_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await service.client.get(f"/v1/sms/{message_id}", headers=HEADERS if headers is None else headers)


async def stored(service: Service) -> int:
    async with service.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(Message))).scalar_one()


# --- the 201 and the lifecycle ------------------------------------------------------------------------------


async def test_a_send_is_201_with_the_pages_message_object(amigo: Service) -> None:
    response = await send(amigo)
    assert response.status_code == 201
    body = response.json()
    uuid.UUID(body["id"])
    now = amigo.clock.now().isoformat()
    assert body == {
        "id": body["id"],
        "use_case_id": USE_CASE,
        "message_sid": None,
        "from_number": None,
        "to_number": RECIPIENT,
        "body": "Your appointment is at 3pm",
        "num_segments": None,
        "status": "pending",
        "handed_off_at": None,
        "delivered_at": None,
        "errored_at": None,
        "error_code": None,
        "created_at": now,
        "updated_at": now,
    }
    assert (await get(amigo, body["id"])).json() == body


async def test_the_lifecycle_is_pending_then_sent_then_delivered(amigo: Service) -> None:
    message_id = (await send(amigo)).json()["id"]
    pending = (await get(amigo, message_id)).json()
    assert (pending["status"], pending["from_number"], pending["message_sid"]) == ("pending", None, None)

    await amigo.work()
    sent = (await get(amigo, message_id)).json()
    assert sent["status"] == "sent"
    assert sent["from_number"] in POOL and sent["message_sid"].startswith("SM")
    assert sent["handed_off_at"] == amigo.clock.now().isoformat()
    assert (sent["num_segments"], sent["delivered_at"]) == (1, None)

    await amigo.settle()
    delivered = (await get(amigo, message_id)).json()
    assert delivered["status"] == "delivered"
    assert delivered["delivered_at"] is not None and delivered["delivered_at"] > sent["handed_off_at"]
    assert delivered["from_number"] == sent["from_number"]
    assert delivered["updated_at"] == delivered["delivered_at"]


@pytest.fixture
async def without_receipts(database_url: str, clock: FakeClock) -> AsyncIterator[Service]:
    """A sandbox whose routes to Canada send no delivery receipts."""
    settings = make_settings(database_url, sandbox_routes_without_receipts=frozenset({"CA"}))
    async with in_process(settings, clock, use_case_document()) as service:
        yield service


async def test_on_a_route_without_receipts_the_message_stays_sent(without_receipts: Service) -> None:
    message_id = (await send(without_receipts, to_phone_number="+16045551234")).json()["id"]
    await without_receipts.settle()
    message = (await get(without_receipts, message_id)).json()
    assert message["status"] == "sent"
    assert message["handed_off_at"] is not None and message["delivered_at"] is None
    handset = await without_receipts.client.get("/sandbox/handsets/+16045551234/messages")
    assert [m["body"] for m in handset.json()] == ["Your appointment is at 3pm"]


async def test_a_carrier_failure_reads_failed_with_its_code(amigo: Service) -> None:
    message_id = (await send(amigo, to_phone_number="+15005550002")).json()["id"]  # Twilio's unroutable
    await amigo.settle()
    message = (await get(amigo, message_id)).json()
    assert (message["status"], message["error_code"]) == ("failed", 21612)
    assert message["errored_at"] is not None and message["handed_off_at"] is None


# --- the page's error table ---------------------------------------------------------------------------------


async def refused(service: Service, status: int, response: httpx.Response, *words: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and all(w in detail for w in words), detail
    assert list(response.json()) == ["detail"]
    assert await stored(service) == 0
    return detail


async def test_an_unknown_use_case_is_404(amigo: Service) -> None:
    unknown = str(uuid.uuid4())
    await refused(amigo, 404, await send(amigo, use_case_id=unknown), unknown, "not found")


async def test_a_deleted_use_case_is_404(amigo: Service) -> None:
    document = use_case_document()
    document["accounts"][0]["projects"][-1]["use_cases"] = []
    await amigo.provision(document)
    await refused(amigo, 404, await send(amigo), USE_CASE, "not found")


async def test_another_accounts_use_case_is_404_as_if_unknown(amigo: Service) -> None:
    detail = await refused(amigo, 404, await send(amigo, use_case_id=OTHER_USE_CASE))
    assert detail == f"SMS use case '{OTHER_USE_CASE}' not found."


async def test_an_empty_sender_pool_is_422(amigo: Service) -> None:
    await amigo.provision(use_case_document(use_case={"sender_pool": []}))
    await refused(amigo, 422, await send(amigo), "No phone number is assigned", USE_CASE)


@pytest.mark.parametrize("campaign", ["pending", "rejected", None])
async def test_a_us_long_code_pool_without_a_verified_campaign_is_422(
    amigo: Service, campaign: str | None
) -> None:
    await amigo.provision(use_case_document(use_case={"campaign": campaign}))
    await refused(amigo, 422, await send(amigo), "A2P 10DLC", "US long codes")


async def test_a_toll_free_pool_needs_no_10dlc_campaign(amigo: Service) -> None:
    document = use_case_document(use_case={"campaign": None})
    for number in document["accounts"][0]["projects"][-1]["numbers"]:
        number["kind"] = "toll_free"
    await amigo.provision(document)
    assert (await send(amigo)).status_code == 201


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("4155551234", ("not in E.164 format",)),
        ("+1415555", ("not a valid phone number",)),
        ("+19995551234", ("not a valid phone number",)),
        ("+12125550042", ("is a landline",)),  # the sandbox lookup's reserved landlines
        ("+15005550009", ("is a landline",)),  # Twilio's magic "not SMS-capable", known to the sandbox lookup
        ("+15005550001", ("is not a real phone number",)),  # Twilio's magic "invalid number"
    ],
)
async def test_an_invalid_or_landline_destination_is_422(
    amigo: Service, number: str, words: tuple[str, ...]
) -> None:
    await refused(amigo, 422, await send(amigo, to_phone_number=number), "to_phone_number", *words)


async def test_a_landline_known_to_libphonenumber_is_422(amigo: Service) -> None:
    await amigo.provision(use_case_document(use_case={"allowed_countries": ["US", "GB"]}))
    await refused(amigo, 422, await send(amigo, to_phone_number="+442071838750"), "is a landline")


async def test_an_opted_out_destination_is_422(amigo: Service) -> None:
    stop = await amigo.client.post(
        "/sandbox/inbound", json={"from": RECIPIENT, "to": POOL[0], "body": "STOP"}
    )
    assert stop.status_code == 201
    before = await stored(amigo)
    response = await send(amigo)
    assert response.status_code == 422
    assert "opted out" in response.json()["detail"]
    assert await stored(amigo) == before


async def test_a_destination_country_not_allowed_is_422(amigo: Service) -> None:
    await refused(amigo, 422, await send(amigo, to_phone_number="+447400123456"), "GB", "allowed: CA, US")


async def test_a_suspended_brand_is_422(amigo: Service) -> None:
    await amigo.provision(use_case_document(use_case={"brand": "suspended"}))
    await refused(amigo, 422, await send(amigo), "brand registration", "suspended")


async def test_an_inactive_use_case_is_422(amigo: Service) -> None:
    await amigo.provision(use_case_document(use_case={"active": False}))
    await refused(amigo, 422, await send(amigo), "not active")


BROKEN: dict[str, Any] = {"active": False, "sender_pool": [], "campaign": None, "brand": "suspended"}
FIXES: list[dict[str, Any]] = [
    {"active": True},
    {"sender_pool": POOL},
    {"campaign": "verified"},
    {"brand": "verified"},
]
FIRST_REFUSAL = ["not active", "No phone number", "A2P 10DLC", "suspended", "may not send to"]


@pytest.mark.parametrize("fixed", range(len(FIXES) + 1))
async def test_the_checks_run_in_the_documented_order(amigo: Service, fixed: int) -> None:
    """A send that breaks every rule is refused for the first it breaks: the use case, its pool, its campaign,
    its brand, then the destination (a UK number the use case may not send to)."""
    use_case = dict(BROKEN)
    for fix in FIXES[:fixed]:
        use_case.update(fix)
    await amigo.provision(use_case_document(use_case=use_case))
    await refused(amigo, 422, await send(amigo, to_phone_number="+447400123456"), FIRST_REFUSAL[fixed])


# --- the request itself -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"use_case_id": "not-a-uuid"}, ("use_case_id",)),
        ({"message": ""}, ("message",)),
        ({"message": "x" * 1601}, ("message", "1600")),
        ({"to_phone_number": 14155551234}, ("to_phone_number",)),
        ({"message": None}, ("message",)),
    ],
)
async def test_a_bad_body_is_422_with_a_detail(
    amigo: Service, payload: dict[str, Any], words: tuple[str, ...]
) -> None:
    await refused(amigo, 422, await send(amigo, **payload), *words)


async def test_a_missing_field_is_named(amigo: Service) -> None:
    response = await amigo.client.post("/v1/sms/", json={"use_case_id": USE_CASE}, headers=HEADERS)
    detail = await refused(amigo, 422, response, "to_phone_number", "message")
    assert "Field required" in detail


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"[]", "application/json"), (b"use_case_id=x", "text/plain")],
)
async def test_a_body_that_is_not_a_json_object_is_422(
    amigo: Service, content: bytes, content_type: str
) -> None:
    response = await amigo.client.post(
        "/v1/sms/", content=content, headers=HEADERS | {"Content-Type": content_type}
    )
    await refused(amigo, 422, response)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer rk_wrong"}, {"authorization": "rk_wrong"}])
async def test_a_missing_or_unknown_key_is_401(amigo: Service, headers: dict[str, str]) -> None:
    await refused(amigo, 401, await send(amigo, headers=headers))


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {API_KEY}"}, {"authorization": API_KEY}])
async def test_a_key_is_named_with_or_without_bearer(amigo: Service, headers: dict[str, str]) -> None:
    assert (await send(amigo, headers=headers)).status_code == 201


async def test_a_message_is_visible_only_to_its_account(amigo: Service) -> None:
    message_id = (await send(amigo)).json()["id"]
    theirs = await get(amigo, message_id, headers={"Authorization": f"Bearer {OTHER_API_KEY}"})
    assert theirs.status_code == 404 and "not found" in theirs.json()["detail"]
    assert (await get(amigo, str(uuid.uuid4()))).status_code == 404
    assert (await get(amigo, "not-a-uuid")).status_code == 404
    assert (await get(amigo, message_id, headers={})).status_code == 401


async def test_a_polyai_greeting_is_not_an_sms_use_case_message(amigo: Service) -> None:
    await amigo.client.post(
        "/v1/outbound-sms",
        json={"message": "Hi", "user_number": RECIPIENT},
        headers={"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": "conn_clinic"},
    )
    async with amigo.runtime.database.read() as session:
        greeting_id = (await session.execute(select(Message.id))).scalar_one()
    assert (await get(amigo, greeting_id)).status_code == 404


async def test_bland_conversations_still_route_beside_amigo_messages(amigo: Service) -> None:
    response = await amigo.client.get("/v1/sms/conversations", headers={"authorization": API_KEY})
    assert response.status_code == 200 and response.json()["errors"] is None


async def test_the_path_without_its_trailing_slash_sends_too(amigo: Service) -> None:
    response = await amigo.client.post(
        "/v1/sms",
        json={"use_case_id": USE_CASE, "to_phone_number": RECIPIENT, "message": "Hi"},
        headers=HEADERS,
    )
    assert response.status_code == 201 and response.json()["status"] == "pending"
