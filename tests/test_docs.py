"""`/docs` and `/redoc` load everything from reachout itself (no CDN, so they work offline), the OpenAPI
document declares each dialect's credentials so that Swagger UI's "Try it out" authenticates, and it tells
the real contract: each operation's statuses with the bodies and headers it gives, examples that hold to
their schemas and are accepted, and none of FastAPI's default 422 (`tests/test_schemathesis.py` fuzzes it)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import schemathesis

from reachout.kit.clock import FakeClock
from tests.support import databases
from tests.support.provisioning import (
    API_KEY,
    CONNECTOR,
    POLYAI_HEADERS,
    USE_CASE,
    standard_document,
    use_case_document,
)
from tests.support.service import Service, in_process, make_settings
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN

BASE_URL = "http://reachout.test"  # the in-process client's; an asset on any other host is off-host
# What each page loads, by the kind the file is; Swagger UI's standalone preset is inside its bundle.
PAGE_ASSETS = {
    "/docs": {
        "/docs-assets/swagger-ui-bundle.js": "script",
        "/docs-assets/swagger-ui.css": "style",
        "/docs-assets/favicon.png": "image",
    },
    "/redoc": {
        "/docs-assets/redoc.standalone.js": "script",
        "/docs-assets/favicon.png": "image",
    },
}
CONTENT_TYPES = {"script": "javascript", "style": "text/css", "image": "image/png"}
# The smallest file each kind could be and still be the real thing (the favicon is about 5 kB).
MIN_BYTES = {"script": 500_000, "style": 50_000, "image": 1_000}
UNREACHABLE = "http://127.0.0.1:9"  # no test here sends through Twilio
URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")

Requirement = list[dict[str, list[str]]]
POLYAI: Requirement = [{"PolyAiAuthToken": [], "PolyAiConnectorId": []}]
AMIGO: Requirement = [{"AmigoBearer": []}]
BLAND: Requirement = [{"BlandApiKey": []}]
REACHOUT: Requirement = [{"ReachoutApiKey": []}]
API_TAG = "reachout: events and webhooks"
SECURITY_FOR_TAG = {"PolyAI": POLYAI, "Amigo": AMIGO, "Bland": BLAND, API_TAG: REACHOUT}
SCHEMES = {
    "PolyAiAuthToken": {"type": "apiKey", "in": "header", "name": "X-PolyAi-Auth-Token"},
    "PolyAiConnectorId": {"type": "apiKey", "in": "header", "name": "X-TOKEN-ID"},
    "AmigoBearer": {"type": "http", "scheme": "bearer"},
    "BlandApiKey": {"type": "apiKey", "in": "header", "name": "authorization"},
    "ReachoutApiKey": {"type": "http", "scheme": "bearer"},
}
VALUES = {
    "PolyAiAuthToken": API_KEY,
    "PolyAiConnectorId": CONNECTOR,
    "AmigoBearer": API_KEY,
    "BlandApiKey": API_KEY,
    "ReachoutApiKey": API_KEY,
}


class References(HTMLParser):
    """Every URL an HTML page names in an attribute (`src`, `href`, ReDoc's `spec-url`), with its tag."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.found.append((tag, value))


def references(html: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(html)
    return parser.found


@pytest.fixture
async def docs_service(sqlite_template: Path, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Service]:
    """reachout on SQLite alone (the document and its pages do not depend on the database), with a Twilio
    account configured so that the carrier's callbacks are served and documented too."""
    settings = make_settings(
        databases.sqlite_copy(sqlite_template, tmp_path),
        public_url=BASE_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=UNREACHABLE,
    )
    async with in_process(settings, clock, standard_document()) as service:
        yield service


@pytest.mark.parametrize("page", sorted(PAGE_ASSETS))
async def test_each_docs_page_loads_its_assets_from_reachout_itself(docs_service: Service, page: str) -> None:
    response = await docs_service.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    found = references(html)
    off_host = [
        url for url in URL.findall(html) if urlsplit(urljoin(BASE_URL, url)).netloc != "reachout.test"
    ]
    assert off_host == [], f"{page} names another host: {off_host}"
    assets = {value for tag, value in found if tag in ("script", "link", "img")}
    assert assets == set(PAGE_ASSETS[page])
    for asset, kind in PAGE_ASSETS[page].items():
        fetched = await docs_service.client.get(asset)
        assert fetched.status_code == 200, asset
        assert CONTENT_TYPES[kind] in fetched.headers["content-type"], (
            asset,
            fetched.headers["content-type"],
        )
        assert len(fetched.content) >= MIN_BYTES[kind], (asset, len(fetched.content))
    # The document the page renders is reachout's own too (Swagger UI names it in its inline script).
    assert "/openapi.json" in html
    assert (await docs_service.client.get("/openapi.json")).json()["paths"]
    # Images only from here: ReDoc's bundle would show Redocly's logo from its CDN.
    assert response.headers["content-security-policy"] == "img-src 'self' data: blob:"


async def test_swagger_ui_sends_the_document_to_no_validator(docs_service: Service) -> None:
    html = (await docs_service.client.get("/docs")).text
    assert '"validatorUrl": null' in html


async def test_the_assets_folder_serves_only_the_packaged_files(docs_service: Service) -> None:
    for path in ("/docs-assets/", "/docs-assets/missing.js", "/docs-assets/%2e%2e/core.py"):
        assert (await docs_service.client.get(path)).status_code == 404, path


async def test_the_document_declares_each_dialects_credentials(docs_service: Service) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    described = {name: scheme.pop("description") for name, scheme in schemes.items()}
    assert schemes == SCHEMES
    assert all(described.values())  # each says what a missing or unknown value is answered with
    assert "security" not in document  # each operation names its own: some take none


async def test_each_dialect_operation_requires_its_credentials_and_no_other_operation_any(
    docs_service: Service,
) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    secured: dict[str, set[str]] = {tag: set() for tag in SECURITY_FOR_TAG}
    unsecured: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            dialects = [tag for tag in operation.get("tags", []) if tag in SECURITY_FOR_TAG]
            if dialects:
                (tag,) = dialects
                assert operation.get("security") == SECURITY_FOR_TAG[tag], label
                secured[tag].add(label)
            else:
                assert "security" not in operation, label
                unsecured.add(label)
            # A credential declared as a header parameter as well would be asked for twice.
            headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
            assert not headers & {"authorization", "x-polyai-auth-token", "x-token-id"}, label
    assert secured == {
        "PolyAI": {"POST /v1/outbound-sms"},
        "Amigo": {"POST /v1/sms/", "GET /v1/sms/{message_id}"},
        "Bland": {"GET /v1/sms/conversations", "GET /v1/sms/conversations/{conversation_id}"},
        API_TAG: {label for label in API_STATUSES},
    }
    assert {"GET /healthz", "POST /sandbox/inbound", "GET /sandbox/handsets/{number}/messages"} <= unsecured
    assert any("twilio" in label for label in unsecured), unsecured  # the carrier's callbacks


def credentials(document: dict[str, Any], requirement: Requirement) -> dict[str, str]:
    """The headers Swagger UI sends for `requirement` once each scheme is given its value (`VALUES`)."""
    headers: dict[str, str] = {}
    for name in requirement[0]:
        scheme = document["components"]["securitySchemes"][name]
        if scheme["type"] == "http":
            assert scheme["scheme"] == "bearer"
            headers["Authorization"] = f"Bearer {VALUES[name]}"
        else:
            assert scheme["in"] == "header"
            headers[scheme["name"]] = VALUES[name]
    return headers


async def test_the_declared_credentials_authenticate_each_dialect(docs_service: Service) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    client = docs_service.client
    polyai = credentials(document, POLYAI)
    greeting = {"message": "Hello", "user_number": "+14155551234"}
    assert (await client.post("/v1/outbound-sms", json=greeting, headers=polyai)).status_code == 202
    assert (await client.post("/v1/outbound-sms", json=greeting)).status_code == 401
    message = "/v1/sms/00000000-0000-4000-8000-000000000000"
    assert (await client.get(message, headers=credentials(document, AMIGO))).status_code == 404
    assert (await client.get(message)).status_code == 401
    bland = credentials(document, BLAND)
    assert (await client.get("/v1/sms/conversations", headers=bland)).status_code == 200
    assert (await client.get("/v1/sms/conversations")).status_code == 401


# Every status each operation gives, as its handler, its dialect's error table and the server's limits do.
STATUSES = {
    "POST /v1/outbound-sms": {"202", "400", "401", "403", "404", "413", "429", "500"},
    "POST /v1/sms/": {"201", "401", "404", "413", "422", "429", "500"},
    "GET /v1/sms/{message_id}": {"200", "401", "404", "500"},
    "GET /v1/sms/conversations": {"200", "400", "401", "500"},
    "GET /v1/sms/conversations/{conversation_id}": {"200", "401", "404", "500"},
    "POST /sandbox/inbound": {"201", "400", "403", "413"},
    "GET /sandbox/handsets/{number}/messages": {"200", "400"},
    "POST /v1/webhook/twilio/sms-status": {"204", "400", "403", "413"},
    "POST /v1/webhook/twilio/sms-inbound": {"200", "400", "403", "413"},
    "GET /healthz": {"200", "503"},
}
# reachout's own API: what each read gives, and the writes' 413 besides.
API_STATUSES = {
    "GET /api/v1/events": {"200", "400", "401", "404", "500"},
    "GET /api/v1/events/{event_id}": {"200", "400", "401", "404", "500"},
    "GET /api/v1/events/{event_id}/attempts": {"200", "400", "401", "404", "500"},
    "POST /api/v1/events/{event_id}/replay": {"202", "400", "401", "404", "413", "500"},
    "GET /api/v1/webhooks": {"200", "400", "401", "404", "500"},
    "GET /api/v1/webhooks/{endpoint_id}/attempts": {"200", "400", "401", "404", "500"},
    "POST /api/v1/webhooks/recover": {"202", "400", "401", "404", "413", "500"},
    "POST /api/v1/webhooks/{endpoint_id}/enable": {"200", "400", "401", "404", "413", "500"},
}
STATUSES |= API_STATUSES
ERROR_SCHEMA_FOR_TAG = {
    "PolyAI": "ErrorDetail",
    "Amigo": "ErrorDetail",
    "Bland": "BlandRefusal",
    API_TAG: "ApiError",
}
# The answers with no body: PolyAI's empty 202, and Twilio's 204 and signature refusals.
NO_BODY = {
    ("POST /v1/outbound-sms", "202"),
    ("POST /v1/webhook/twilio/sms-status", "204"),
    ("POST /v1/webhook/twilio/sms-status", "403"),
    ("POST /v1/webhook/twilio/sms-inbound", "403"),
}


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def conforms(document: dict[str, Any], label: str, response: httpx.Response) -> None:
    """Fail unless `response` is one the document declares for the operation `label` (status and body)."""
    method, path = label.split(" ", 1)
    operation = schemathesis.openapi.from_dict(document)[path][method]
    operation.validate_response(response)


async def test_each_operation_documents_every_status_it_gives(docs_service: Service) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    documented = {label: set(op["responses"]) for label, op in operations(document).items()}
    assert documented == STATUSES


async def test_no_operation_documents_fastapis_validation_error(docs_service: Service) -> None:
    text = (await docs_service.client.get("/openapi.json")).text
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text
    assert "ValidationError" not in json.loads(text)["components"]["schemas"]


async def test_each_dialects_refusals_are_documented_in_its_own_shape(docs_service: Service) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    for label, operation in operations(document).items():
        tags = [tag for tag in operation.get("tags", []) if tag in ERROR_SCHEMA_FOR_TAG]
        for status, response in operation["responses"].items():
            if (label, status) in NO_BODY:
                assert "content" not in response, (label, status)
                continue
            assert response.get("content"), (label, status)  # every body documented, none left open
            if tags and int(status) >= 400:
                [tag] = tags
                # The body limit answers before any route: `{"detail"}` whichever dialect's path it is.
                expected = "ErrorDetail" if status == "413" else ERROR_SCHEMA_FOR_TAG[tag]
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (label, status)


async def test_every_documented_example_holds_to_its_schema(docs_service: Service) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    checked = 0
    for label, operation in operations(document).items():
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                if "example" not in content:
                    continue
                given = content["example"]
                body = json.dumps(given) if media_type == "application/json" else str(given)
                request = httpx.Request(label.split(" ")[0], f"{BASE_URL}/")
                example = httpx.Response(
                    int(status), headers={"content-type": media_type}, content=body.encode(), request=request
                )
                example.elapsed = timedelta(0)
                conforms(document, label, example)
                checked += 1
    assert checked >= 30  # each error and answer of the dialects has one, after the reference pages


async def test_the_request_examples_are_accepted(docs_service: Service) -> None:
    await docs_service.provision(use_case_document())
    document = (await docs_service.client.get("/openapi.json")).json()
    sends = {
        "POST /v1/outbound-sms": POLYAI_HEADERS,
        "POST /v1/sms/": {"Authorization": f"Bearer {API_KEY}"},
        "POST /sandbox/inbound": {},
    }
    for label, headers in sends.items():
        method, path = label.split(" ", 1)
        example = operations(document)[label]["requestBody"]["content"]["application/json"]["example"]
        response = await docs_service.client.request(method, path, json=example, headers=headers)
        # Amigo's names the use case of DESIGN.md's provisioning example, which the tests provision too.
        assert response.status_code in (201, 202), (label, response.text)
        conforms(document, label, response)


@pytest.mark.parametrize("dialect", ["polyai", "amigo"])
async def test_a_rate_limited_send_is_answered_as_documented(docs_service: Service, dialect: str) -> None:
    one_a_minute = {"requests": 1, "per_seconds": 60}
    provisioning = use_case_document(project={"rate_limit": one_a_minute})
    provisioning["accounts"][0]["projects"][0]["rate_limit"] = one_a_minute  # `clinic`, PolyAI's connector
    await docs_service.provision(provisioning)
    document = (await docs_service.client.get("/openapi.json")).json()
    if dialect == "polyai":
        label, headers = "POST /v1/outbound-sms", POLYAI_HEADERS
        body: dict[str, Any] = {"message": "Hello", "user_number": "+14155551234"}
    else:
        label, headers = "POST /v1/sms/", {"Authorization": f"Bearer {API_KEY}"}
        body = {"use_case_id": USE_CASE, "to_phone_number": "+14155551234", "message": "Hello"}
    path = label.split(" ", 1)[1]
    assert (await docs_service.client.post(path, json=body, headers=headers)).status_code in (201, 202)
    refused = await docs_service.client.post(path, json=body, headers=headers)
    assert refused.status_code == 429
    conforms(document, label, refused)
    declared = operations(document)[label]["responses"]["429"]["headers"]["Retry-After"]
    assert declared["required"] and int(refused.headers["Retry-After"]) >= declared["schema"]["minimum"]


async def test_an_oversized_body_is_answered_as_documented(docs_service: Service) -> None:
    document = (await docs_service.client.get("/openapi.json")).json()
    oversized = b"{" + b" " * docs_service.runtime.settings.max_body_bytes + b"}"
    for label in ("POST /v1/outbound-sms", "POST /v1/sms/", "POST /sandbox/inbound"):
        path = label.split(" ", 1)[1]
        response = await docs_service.client.post(path, content=oversized, headers=POLYAI_HEADERS)
        assert response.status_code == 413, label
        conforms(document, label, response)
