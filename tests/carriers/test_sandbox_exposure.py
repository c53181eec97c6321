"""The sandbox is for development: its routes exist only while sandbox numbers are provisioned (or a setting
asks for them), and a handset may text only a sandbox number, never as one of reachout's real numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from reachout.compliance import service as compliance
from reachout.compliance.models import OptOut
from reachout.config import SandboxRoutes
from reachout.messaging.models import Message
from tests.support.provisioning import SECOND_SENDER, SENDER, USER, standard_document
from tests.support.service import Service, in_process, make_settings
from tests.support.twilio_emulator import numbers_on_twilio

SANDBOX_REQUESTS = [
    ("POST", "/sandbox/inbound", {"from": USER, "to": SENDER, "body": "STOP"}),
    ("GET", f"/sandbox/handsets/{USER}/messages", None),
    ("GET", "/sandbox/inbound", None),  # a wrong method is not a 405 that gives the route away
    ("POST", "/sandbox/inbound", "not json"),
    ("GET", "/sandbox", None),
    ("DELETE", "/sandbox/anything/at/all", None),
]


def twilio_only() -> dict[str, Any]:
    return numbers_on_twilio(standard_document())


SANDBOX_ONLY = "+14155550105"


def mixed() -> dict[str, Any]:
    """The clinic's numbers on Twilio, and a project of its own with one sandbox number, SANDBOX_ONLY."""
    document = twilio_only()
    document["accounts"][0]["projects"][1]["numbers"] = [{"number": SANDBOX_ONLY, "carrier": "sandbox"}]
    return document


def one_project_on_both() -> dict[str, Any]:
    """The clinic's first number on Twilio, SECOND_SENDER beside it on the sandbox, in the same project."""
    document = standard_document()
    document["accounts"][0]["projects"][0]["numbers"][0]["carrier"] = "twilio"
    return document


async def request(service: Service, method: str, path: str, body: Any) -> Any:
    if isinstance(body, str):
        return await service.client.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    return await service.client.request(method, path, json=body)


async def stored(service: Service) -> tuple[int, int]:
    """How many messages and opt-outs the database holds."""
    async with service.runtime.database.read() as session:
        messages = (await session.execute(select(func.count()).select_from(Message))).scalar_one()
        opt_outs = (await session.execute(select(func.count()).select_from(OptOut))).scalar_one()
    return messages, opt_outs


async def sandbox_paths(service: Service) -> list[str]:
    document = (await service.client.get("/openapi.json")).json()
    return [path for path in document["paths"] if path.startswith("/sandbox")]


@pytest.fixture
async def on_twilio(database_url: str, clock: Any) -> AsyncIterator[Service]:
    async with in_process(make_settings(database_url), clock, twilio_only()) as service:
        yield service


@pytest.mark.parametrize(("method", "path", "body"), SANDBOX_REQUESTS)
async def test_with_only_twilio_numbers_every_sandbox_path_is_404(
    on_twilio: Service, method: str, path: str, body: Any
) -> None:
    response = await request(on_twilio, method, path, body)
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert await stored(on_twilio) == (0, 0)


async def test_with_only_twilio_numbers_the_sandbox_is_absent_from_openapi(on_twilio: Service) -> None:
    assert await sandbox_paths(on_twilio) == []
    document = (await on_twilio.client.get("/openapi.json")).json()
    assert "/v1/outbound-sms" in document["paths"]
    assert "sandbox" not in {tag for operation in _operations(document) for tag in operation.get("tags", [])}
    schemas = document.get("components", {}).get("schemas", {})
    assert not {"InboundRequest", "InboundAccepted", "HandsetMessage"} & set(schemas)
    assert {"ErrorDetail", "AmigoSmsMessage"} <= set(schemas)  # still used by the routes left
    assert (await on_twilio.client.get("/docs")).status_code == 200


async def test_with_sandbox_numbers_the_sandbox_is_served_and_documented(service: Service) -> None:
    assert sorted(await sandbox_paths(service)) == ["/sandbox/handsets/{number}/messages", "/sandbox/inbound"]
    response = await service.client.get(f"/sandbox/handsets/{USER}/messages")
    assert (response.status_code, response.json()) == (200, [])


async def test_the_routes_follow_provisioning_while_the_server_runs(service: Service) -> None:
    await service.provision(twilio_only())
    assert (await service.client.get(f"/sandbox/handsets/{USER}/messages")).status_code == 404
    assert await sandbox_paths(service) == []
    await service.provision(standard_document())
    assert (await service.client.get(f"/sandbox/handsets/{USER}/messages")).status_code == 200
    assert len(await sandbox_paths(service)) == 2


@pytest.mark.parametrize(
    ("setting", "document", "served"),
    [
        (SandboxRoutes.ON, twilio_only, True),
        (SandboxRoutes.OFF, standard_document, False),
        (SandboxRoutes.AUTO, mixed, True),
        (SandboxRoutes.AUTO, one_project_on_both, True),
    ],
)
async def test_the_setting_overrides_what_provisioning_implies(
    database_url: str, clock: Any, setting: SandboxRoutes, document: Any, served: bool
) -> None:
    settings = make_settings(database_url, sandbox_routes=setting)
    async with in_process(settings, clock, document()) as service:
        response = await service.client.get(f"/sandbox/handsets/{USER}/messages")
        assert response.status_code == (200 if served else 404)
        assert bool(await sandbox_paths(service)) is served


@pytest.mark.parametrize("body", ["STOP", "START", "HELP", "Can I move it to 3pm?"])
async def test_with_sandbox_numbers_a_text_to_a_twilio_number_is_refused(
    database_url: str, clock: Any, body: str
) -> None:
    async with in_process(make_settings(database_url), clock, mixed()) as service:
        response = await service.client.post(
            "/sandbox/inbound", json={"from": USER, "to": SENDER, "body": body}
        )
        assert response.status_code == 403
        assert f"to: {SENDER} is not a sandbox number" in response.json()["detail"]
        await service.settle()
        assert await stored(service) == (0, 0)
        # The sandbox number of the other project still takes texts.
        ok = await service.client.post(
            "/sandbox/inbound", json={"from": USER, "to": SANDBOX_ONLY, "body": body}
        )
        assert ok.status_code == 201


async def test_a_handset_cannot_text_as_one_of_reachouts_twilio_numbers(
    database_url: str, clock: Any
) -> None:
    async with in_process(make_settings(database_url), clock, mixed()) as service:
        response = await service.client.post(
            "/sandbox/inbound", json={"from": SENDER, "to": SANDBOX_ONLY, "body": "STOP"}
        )
        assert response.status_code == 403
        assert (
            f"from: {SENDER} is one of reachout's numbers on the twilio carrier" in response.json()["detail"]
        )
        assert await stored(service) == (0, 0)


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [operation for path in document["paths"].values() for operation in path.values()]


@pytest.mark.parametrize("body", ["START", "STOP", "HELP"])
async def test_a_sandbox_number_sharing_a_project_with_twilio_numbers_takes_no_text(
    database_url: str, clock: Any, body: str
) -> None:
    """Consent is per project: a forged START to the sandbox number would re-subscribe a person who opted out
    on the project's Twilio number, and a STOP would opt them out."""
    async with in_process(make_settings(database_url), clock, one_project_on_both()) as service:
        async with service.runtime.database.write.begin() as session:
            await compliance.opt_out(session, "clinic", USER, "STOP", clock.now())
        response = await service.client.post(
            "/sandbox/inbound", json={"from": USER, "to": SECOND_SENDER, "body": body}
        )
        assert response.status_code == 403
        assert "shares its project with numbers on the twilio carrier" in response.json()["detail"]
        assert await stored(service) == (0, 1)  # the opt-out stands, and nothing else was written
