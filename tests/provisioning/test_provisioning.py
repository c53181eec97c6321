"""Provisioning: reading the file (errors name file, path and problem), applying it, and `reachout apply`."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from reachout.cli import app as cli
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.provisioning.loader import ProvisioningError
from reachout.provisioning.schema import ProvisioningFile
from reachout.tables import metadata
from reachout.tenancy import service as tenancy
from reachout.tenancy.models import Account, ApiKey, PhoneNumber, Project, UseCase
from tests.support.provisioning import (
    API_KEY,
    CONNECTOR,
    OTHER_API_KEY,
    PRE_RELEASE_SENDER,
    SECOND_SENDER,
    SENDER,
    USER,
    standard_document,
)
from tests.support.service import Service

USE_CASE = "3f6c2a3e-5b0e-4a8e-9d3c-0f1e2d3c4b5a"
SOURCE = "clinic.yaml"


def parse_error(document: Any, source: str = SOURCE) -> str:
    with pytest.raises(ProvisioningError) as caught:
        loader.parse(document, source)
    return str(caught.value)


def two_projects(**changes: Any) -> dict[str, Any]:
    """One account with two projects; `changes` are merged into the second project (index 1)."""
    second = {"id": "dental", "connector_id": "conn_dental", "numbers": [{"number": "+14155550120"}]}
    return {
        "accounts": [
            {
                "id": "acme",
                "api_keys": [API_KEY],
                "projects": [
                    {"id": "clinic", "connector_id": CONNECTOR, "numbers": [{"number": SENDER}]},
                    second | changes,
                ],
            }
        ]
    }


# --- validation: the file, the path inside it, what is wrong ------------------------------------------------


def test_the_standard_document_is_valid() -> None:
    parsed = loader.parse(standard_document(), SOURCE)
    assert [a.id for a in parsed.accounts] == ["acme", "other"]
    assert parsed.accounts[0].projects[0].numbers[2].environment == "pre-release"


@pytest.mark.parametrize(
    ("document", "line"),
    [
        pytest.param(
            two_projects(numbers=[{"number": "4155550120"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].number: '4155550120' is not in E.164 format",
            id="bad-e164-no-plus",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+1415"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].number: '+1415' is not a valid phone number",
            id="bad-e164-too-short",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120", "colour": "blue"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].colour: Extra inputs are not permitted",
            id="unknown-key-in-number",
        ),
        pytest.param(
            two_projects(connecter_id="typo"),
            "clinic.yaml: accounts[0].projects[1].connecter_id: Extra inputs are not permitted",
            id="unknown-key-in-project",
        ),
        pytest.param(
            {"accounts": [], "acounts": []},
            "clinic.yaml: acounts: Extra inputs are not permitted",
            id="unknown-top-level-key",
        ),
        pytest.param(
            two_projects(environment="production"),
            "clinic.yaml: accounts[0].projects[1].environment: "
            "Input should be 'sandbox', 'pre-release' or 'live'",
            id="bad-environment",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120", "environment": "staging"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].environment: Input should be",
            id="bad-number-environment",
        ),
        pytest.param(
            two_projects(rate_limit={"requests": 0, "per_seconds": 60}),
            "clinic.yaml: accounts[0].projects[1].rate_limit.requests: Input should be greater than 0",
            id="zero-rate-limit",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120", "carrier": "telnyx"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].carrier: Input should be",
            id="unknown-carrier",
        ),
        pytest.param(
            two_projects(id="has space"),
            "clinic.yaml: accounts[0].projects[1].id: String should match pattern",
            id="bad-project-id",
        ),
        pytest.param(
            [{"id": "acme"}],
            "clinic.yaml: (top level): Input should be a valid dictionary",
            id="not-a-mapping",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120", "throughput_mps": 0}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].throughput_mps",
            id="zero-throughput",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120", "throughput_mps": "fast"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].throughput_mps",
            id="words-for-throughput",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120", "brand": "nobody"}]),
            "clinic.yaml: accounts[0].projects[1].numbers[0].brand: brand 'nobody' is not one of this "
            "account's brands",
            id="unknown-brand",
        ),
        pytest.param(
            two_projects(twilio={"messaging_service_sid": "MG123"}),
            "clinic.yaml: accounts[0].projects[1].twilio.messaging_service_sid: String should match pattern",
            id="bad-messaging-service-sid",
        ),
        pytest.param(
            {"carriers": {"twilio": {"account_sid": "AC" + "0" * 32}}},
            "clinic.yaml: carriers.twilio.auth_token: Field required",
            id="twilio-without-token",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": "not-a-uuid", "name": "reminders"}]),
            "clinic.yaml: accounts[0].projects[1].use_cases[0].id: Input should be a valid UUID",
            id="use-case-id-not-a-uuid",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": USE_CASE, "name": "r", "sender_pool": [SENDER]}]),
            f"clinic.yaml: accounts[0].projects[1].use_cases[0].sender_pool[0]: {SENDER} is not one of this "
            "project's numbers",
            id="pool-number-of-another-project",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": USE_CASE, "name": "r", "allowed_countries": ["US", "XX", "usa"]}]),
            "clinic.yaml: accounts[0].projects[1].use_cases[0].allowed_countries: not ISO 3166-1 alpha-2 "
            "country codes: XX, usa",
            id="unknown-country",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": USE_CASE, "name": "r", "campaign": "approved"}]),
            "clinic.yaml: accounts[0].projects[1].use_cases[0].campaign: Input should be",
            id="unknown-campaign-status",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": USE_CASE, "name": "r", "replies": "nobody"}]),
            "clinic.yaml: accounts[0].projects[1].use_cases[0].replies: must be none, project, or an agent "
            "setting such as {pathway: ID}",
            id="unknown-replies",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": USE_CASE, "name": "r", "replies": {"persona": "sam"}}]),
            "clinic.yaml: accounts[0].projects[1].use_cases[0].replies: agent setting {'persona': 'sam'} "
            "must name exactly one of: pathway",
            id="replies-agent-of-no-kind",
        ),
        pytest.param(
            two_projects(use_cases=[{"id": USE_CASE, "name": "r", "replies": "project"}]),
            "clinic.yaml: accounts[0].projects[1].use_cases[0].replies: 'project' needs the project's agent, "
            "and this project has none",
            id="replies-project-without-an-agent",
        ),
        pytest.param(
            {"carriers": {"telnyx": {}}},
            "clinic.yaml: carriers.telnyx: Extra inputs are not permitted",
            id="unknown-carrier-credentials",
        ),
    ],
)
def test_a_validation_error_names_the_file_the_path_and_the_problem(document: Any, line: str) -> None:
    message = parse_error(document)
    assert any(problem.startswith(line) for problem in message.splitlines()), message


@pytest.mark.parametrize(
    ("document", "what"),
    [
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120"}, {"number": "+14155550120"}]),
            "+14155550120",
            id="duplicate-number-in-a-project",
        ),
        pytest.param(two_projects(id="clinic"), "project id 'clinic'", id="duplicate-project-id"),
        pytest.param(
            two_projects(numbers=[{"number": SENDER}]), SENDER, id="duplicate-number-across-projects"
        ),
        pytest.param(
            two_projects(connector_id=CONNECTOR), f"connector_id '{CONNECTOR}'", id="duplicate-connector"
        ),
        pytest.param(
            {"accounts": [{"id": "acme"}, {"id": "acme"}]}, "account id 'acme'", id="duplicate-account-id"
        ),
    ],
)
def test_a_duplicate_is_refused_naming_the_file_and_the_value(document: Any, what: str) -> None:
    [line] = parse_error(document).splitlines()
    assert line.startswith("clinic.yaml: ")
    assert what in line
    assert "twice" in line or "more than once" in line


def test_a_short_api_key_is_refused_without_echoing_it() -> None:
    document = two_projects()
    document["accounts"][0]["api_keys"] = [API_KEY, "s3cr3t"]
    message = parse_error(document)
    assert message.startswith("clinic.yaml: accounts[0].api_keys")
    assert "at least 8 characters" in message
    assert "s3cr3t" not in message


def test_a_duplicate_api_key_is_refused_without_echoing_it() -> None:
    document = standard_document()
    document["accounts"][1]["api_keys"] = [API_KEY]
    message = parse_error(document)
    assert "API key" in message and "appears more than once" in message
    assert API_KEY not in message


def test_every_problem_is_reported_one_per_line() -> None:
    document = two_projects(environment="production", numbers=[{"number": "hello"}], colour="red")
    lines = parse_error(document).splitlines()
    assert len(lines) == 3
    assert all(line.startswith("clinic.yaml: accounts[0].projects[1].") for line in lines)
    assert {line.split(": ")[1] for line in lines} == {
        "accounts[0].projects[1].environment",
        "accounts[0].projects[1].numbers[0].number",
        "accounts[0].projects[1].colour",
    }


@pytest.mark.parametrize(
    ("document", "path"),
    [
        pytest.param(two_projects(id="clinic"), "accounts[0].projects[1].id", id="duplicate-project-id"),
        pytest.param(
            two_projects(numbers=[{"number": SENDER}]),
            "accounts[0].projects[1].numbers[0].number",
            id="duplicate-number-across-projects",
        ),
        pytest.param(
            two_projects(numbers=[{"number": "+14155550120"}, {"number": "+14155550120"}]),
            "accounts[0].projects[1].numbers[1].number",
            id="duplicate-number-in-a-project",
        ),
    ],
)
def test_a_duplicate_is_reported_at_its_own_path(document: Any, path: str) -> None:
    assert parse_error(document).startswith(f"clinic.yaml: {path}: ")


# --- loading files ------------------------------------------------------------------------------------------


def test_load_reads_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "reachout.yaml"
    path.write_text(yaml.safe_dump(standard_document()), encoding="utf-8")
    assert loader.load(path) == ProvisioningFile.model_validate(standard_document())


def test_an_empty_file_provisions_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert loader.load(path).accounts == []


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ProvisioningError) as caught:
        loader.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot read")
    assert "No such file" in message


def test_invalid_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("accounts:\n  - id: acme\n    api_keys: [rk_unterminated\n", encoding="utf-8")
    with pytest.raises(ProvisioningError) as caught:
        loader.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid YAML")
    assert "line" in message


TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KEY = "rk_live_Zq81mXc0Lr2PwB7n"
BROKEN_SECRETS = {
    "an-auth-token-line": (
        f"carriers:\n  twilio:\n    account_sid: AC{'0' * 32}\n    auth_token: {TOKEN}: oops\n",
        "line 4, column",
    ),
    "a-flow-mapping-with-a-token": (
        f'carriers:\n  twilio: {{account_sid: AC1, auth_token: "{TOKEN}}}\n',
        "line",
    ),
    "an-api-key-list-item": (
        f"accounts:\n  - id: acme\n    api_keys:\n      - {KEY}: x: y\n",
        "line 4, column",
    ),
    "a-key-under-api-keys-a-line-below": (
        f"accounts:\n  - id: acme\n    api_keys:\n      - rk_live_first_key\n      - {KEY}\n  name: [x\n",
        "line",
    ),
    "a-webhook-secret": (f"accounts:\n  - webhooks:\n      - secret: whsec_{TOKEN}: z\n", "line 3, column"),
}


@pytest.mark.parametrize(("text", "position"), BROKEN_SECRETS.values(), ids=BROKEN_SECRETS.keys())
def test_a_yaml_error_shows_where_but_never_a_secret_on_the_line(
    tmp_path: Path, text: str, position: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProvisioningError) as caught:
        loader.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid YAML: ") and position in message
    assert TOKEN not in message and KEY not in message


def test_a_yaml_error_on_a_line_without_secrets_shows_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("accounts:\n  - id: acme\n    name: Acme: Health\n", encoding="utf-8")
    with pytest.raises(ProvisioningError) as caught:
        loader.load(path)
    assert str(caught.value) == (
        f"{path}: not valid YAML: mapping values are not allowed here at line 3, column 15:\n"
        "        name: Acme: Health"
    )


def test_a_validation_error_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(two_projects(numbers=[{"number": "4155550120"}])), encoding="utf-8")
    with pytest.raises(ProvisioningError) as caught:
        loader.load(path)
    assert str(caught.value).startswith(f"{path}: accounts[0].projects[1].numbers[0].number: ")


# --- applying -----------------------------------------------------------------------------------------------


async def rows(service: Service, model: Any) -> list[tuple[Any, ...]]:
    """Every row of a table, as tuples of its columns, without the `updated_at` a re-apply may move."""
    columns = [c for c in model.__table__.columns if c.name != "updated_at"]
    async with service.runtime.database.read() as session:
        result = await session.execute(select(*columns).order_by(*model.__table__.primary_key.columns))
        return [tuple(r) for r in result]


async def everything(service: Service) -> dict[str, list[tuple[Any, ...]]]:
    return {m.__tablename__: await rows(service, m) for m in (Account, ApiKey, Project, PhoneNumber)}


async def post(service: Service, key: str = API_KEY, **body: Any) -> int:
    payload = {"message": "Hi Jane", "user_number": USER} | body
    headers = {"X-PolyAi-Auth-Token": key, "X-TOKEN-ID": CONNECTOR}
    response = await service.client.post("/v1/outbound-sms", json=payload, headers=headers)
    return response.status_code


async def senders(service: Service) -> set[str | None]:
    async with service.runtime.database.read() as session:
        return set((await session.execute(select(Message.from_number))).scalars())


async def test_applying_the_same_document_twice_changes_nothing(service: Service) -> None:
    before = await everything(service)
    assert [len(before[t]) for t in ("accounts", "api_keys", "projects", "phone_numbers")] == [2, 2, 3, 4]

    async with service.runtime.database.write.begin() as session:
        applied = await provisioning.apply(
            session, loader.parse(standard_document(), "again"), service.clock.now()
        )
    assert (applied.accounts, applied.projects, applied.numbers) == (2, 3, 4)
    await service.provision(standard_document())

    assert await everything(service) == before


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"carrier": "twilio"}, 1.0, id="twilio-long-code"),
        pytest.param({"carrier": "twilio", "kind": "toll_free"}, 3.0, id="twilio-toll-free"),
        pytest.param({"carrier": "twilio", "kind": "short_code"}, 100.0, id="twilio-short-code"),
        pytest.param({"carrier": "twilio", "throughput_mps": 4.5}, 4.5, id="overridden"),
        pytest.param({"carrier": "twilio", "throughput_mps": "unlimited"}, None, id="unlimited"),
        pytest.param({"carrier": "sandbox"}, None, id="sandbox-unpaced"),
        pytest.param({"carrier": "sandbox", "throughput_mps": 1}, 1.0, id="sandbox-rehearsing"),
    ],
)
async def test_a_numbers_pace_follows_its_kind_unless_set(
    service: Service, spec: dict[str, Any], expected: float | None
) -> None:
    document = standard_document()
    document["accounts"][0]["projects"][0]["numbers"][0].update(spec)
    await service.provision(document)
    async with service.runtime.database.read() as session:
        number = await session.get(PhoneNumber, SENDER)
    assert number is not None and number.throughput_mps == expected


async def test_a_brand_cap_and_a_messaging_service_reach_the_dispatcher(service: Service) -> None:
    document = standard_document()
    account = document["accounts"][0]
    account["brands"] = [{"id": "acme-health", "throughput_mps": 2.5}]
    clinic = account["projects"][0]
    clinic["twilio"] = {"messaging_service_sid": "MG" + "a" * 32}
    clinic["numbers"][0]["brand"] = "acme-health"
    await service.provision(document)
    async with service.runtime.database.read() as session:
        profiles = await tenancy.sender_profiles(session, [SENDER, SECOND_SENDER])
    assert (profiles[SENDER].brand, profiles[SENDER].brand_throughput_mps) == ("acme/acme-health", 2.5)
    assert profiles[SENDER].messaging_service_sid == "MG" + "a" * 32
    assert (profiles[SECOND_SENDER].brand, profiles[SECOND_SENDER].brand_throughput_mps) == (None, None)


def with_use_cases(*use_cases: dict[str, Any]) -> dict[str, Any]:
    document = standard_document()
    document["accounts"][0]["projects"][0]["use_cases"] = list(use_cases)
    return document


async def use_cases(service: Service) -> dict[str, UseCase]:
    async with service.runtime.database.read() as session:
        return {u.id: u for u in (await session.execute(select(UseCase))).scalars()}


async def test_a_use_case_is_provisioned_with_its_pool_policies_and_registrations(service: Service) -> None:
    await service.provision(
        with_use_cases(
            {
                "id": USE_CASE.upper(),
                "name": "reminders",
                "sender_pool": [SENDER, SECOND_SENDER],
                "sticky_sender": False,
                "campaign": "verified",
                "messaging_service_sid": "MG" + "b" * 32,
            }
        )
    )
    [stored] = (await use_cases(service)).values()
    assert stored.id == USE_CASE, "ids are stored in the canonical lower-case form"
    assert (stored.project_id, stored.name, stored.active) == ("clinic", "reminders", True)
    assert stored.sender_pool == [SENDER, SECOND_SENDER]
    assert (stored.sticky_sender, stored.area_code_geomatch) == (False, True)
    assert (stored.campaign, stored.brand, stored.deleted_at) == ("verified", "verified", None)
    assert stored.allowed_countries == ["US"], "by default, the countries of the pool's numbers"
    assert stored.twilio_messaging_service_sid == "MG" + "b" * 32


@pytest.mark.parametrize(
    ("replies", "stored", "answered_by"),
    [
        (None, ("none", None), None),
        ("none", ("none", None), None),
        ("project", ("project", None), {"pathway": "appointment-reminder"}),
        ({"pathway": "survey", "version": 2}, ("own", {"pathway": "survey", "version": 2}), None),
    ],
    ids=["default", "none", "project", "own"],
)
async def test_a_use_case_says_what_answers_replies_to_it(
    service: Service, replies: Any, stored: tuple[str, Any], answered_by: Any
) -> None:
    spec: dict[str, Any] = {"id": USE_CASE, "name": "reminders", "sender_pool": [SENDER]}
    if replies is not None:
        spec["replies"] = replies
    document = with_use_cases(spec)
    document["accounts"][0]["projects"][0]["agent"] = {"pathway": "appointment-reminder"}
    await service.provision(document)
    row = (await use_cases(service))[USE_CASE]
    assert (row.replies, row.reply_agent) == stored
    async with service.runtime.database.read() as session:
        view = (await tenancy.use_cases(session, [USE_CASE]))[USE_CASE]
        project = await tenancy.project(session, "clinic")
    assert project is not None
    expected = replies if isinstance(replies, dict) else answered_by
    assert view.reply_agent(project) == expected


async def test_a_use_case_left_out_is_marked_deleted_and_listed_again_is_restored(service: Service) -> None:
    spec = {"id": USE_CASE, "name": "reminders", "sender_pool": [SENDER], "allowed_countries": ["CA", "US"]}
    await service.provision(with_use_cases(spec))
    before = await everything(service)
    await service.provision(with_use_cases(spec))
    assert await everything(service) == before and (await use_cases(service))[USE_CASE].deleted_at is None

    await service.provision(with_use_cases())
    deleted = (await use_cases(service))[USE_CASE]
    assert deleted.deleted_at == service.clock.now(), "kept, for its messages, but marked deleted"
    await service.provision(with_use_cases(spec | {"active": False}))
    restored = (await use_cases(service))[USE_CASE]
    assert (restored.deleted_at, restored.active, restored.allowed_countries) == (None, False, ["CA", "US"])


async def test_a_use_case_id_of_another_project_is_refused(service: Service) -> None:
    await service.provision(with_use_cases({"id": USE_CASE, "name": "reminders"}))
    document = standard_document()
    document["accounts"][1]["projects"][0]["use_cases"] = [{"id": USE_CASE, "name": "theirs"}]
    with pytest.raises(ProvisioningError, match=f"use case {USE_CASE} already belongs to project 'clinic'"):
        await service.provision(document)


async def test_changing_the_environment_changes_the_senders(service: Service) -> None:
    document = standard_document()
    clinic = document["accounts"][0]["projects"][0]
    clinic["environment"] = "pre-release"
    for number in clinic["numbers"][:2]:
        number["environment"] = "live"  # pinned; otherwise a number follows its project's environment
    await service.provision(document)

    async with service.runtime.database.read() as session:
        project = await session.get(Project, "clinic")
        environments = {
            n.number: n.environment for n in (await session.execute(select(PhoneNumber))).scalars()
        }
    assert project is not None and project.environment == "pre-release"
    assert environments[PRE_RELEASE_SENDER] == "pre-release" and environments[SENDER] == "live"
    for n in range(3):
        assert await post(service, user_number=f"+1415555{1500 + n}") == 202
    assert await senders(service) == {PRE_RELEASE_SENDER}


async def test_changing_the_rate_limit_applies_at_once(service: Service) -> None:
    await service.provision(standard_document(rate_limit=1))
    async with service.runtime.database.read() as session:
        project = await session.get(Project, "clinic")
    assert project is not None
    assert (project.rate_limit_requests, project.rate_limit_seconds) == (1, 60.0)
    assert await post(service) == 202
    assert await post(service) == 429


async def test_removing_a_number_unprovisions_it(service: Service) -> None:
    document = standard_document()
    numbers = document["accounts"][0]["projects"][0]["numbers"]
    numbers[:] = [n for n in numbers if n["number"] != SECOND_SENDER]
    await service.provision(document)

    async with service.runtime.database.read() as session:
        assert await session.get(PhoneNumber, SECOND_SENDER) is None
        assert await session.get(PhoneNumber, SENDER) is not None
    assert await post(service, agent_number=SECOND_SENDER) == 400
    for n in range(6):
        assert await post(service, user_number=f"+1415555{1600 + n}") == 202
    assert await senders(service) == {SENDER}


async def test_removing_an_api_key_revokes_it(service: Service) -> None:
    assert await post(service) == 202
    rotated = "rk_test_acme_rotated"
    document = standard_document()
    document["accounts"][0]["api_keys"] = [rotated]
    await service.provision(document)

    assert await post(service, key=API_KEY) == 401
    assert await post(service, key=rotated) == 202
    assert await post(service, key=OTHER_API_KEY) == 403  # the other account's key still works, just not here


async def test_api_keys_are_stored_only_as_sha256_with_a_short_prefix(service: Service) -> None:
    async with service.runtime.database.read() as session:
        keys = {k.account_id: k for k in (await session.execute(select(ApiKey))).scalars()}
    for account_id, secret in (("acme", API_KEY), ("other", OTHER_API_KEY)):
        key = keys[account_id]
        assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert 0 < len(key.prefix) <= 8 and len(key.prefix) <= len(secret) // 3
        assert secret.startswith(key.prefix)

    # The plaintext is nowhere in the database: not in api_keys, not in any other table.
    async with service.runtime.database.read() as session:
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                text = " ".join(str(value) for value in row)
                assert API_KEY not in text and OTHER_API_KEY not in text, table.name


async def test_a_number_of_another_project_is_refused(service: Service) -> None:
    intruder = {
        "accounts": [
            {
                "id": "other",
                "api_keys": [OTHER_API_KEY],
                "projects": [{"id": "intruder", "numbers": [{"number": SENDER}]}],
            }
        ]
    }
    before = await everything(service)
    with pytest.raises(
        ProvisioningError, match=rf"number \{SENDER} is already provisioned to project 'clinic'"
    ):
        await service.provision(intruder)
    assert await everything(service) == before  # the whole run was rolled back


async def test_a_connector_of_another_project_is_refused(service: Service) -> None:
    document = {"accounts": [standard_document()["accounts"][1]]}
    document["accounts"][0]["projects"][0]["connector_id"] = CONNECTOR
    before = await everything(service)
    with pytest.raises(
        ProvisioningError, match=f"connector '{CONNECTOR}' already belongs to project 'clinic'"
    ):
        await service.provision(document)
    assert await everything(service) == before


async def test_an_api_key_of_another_account_is_refused(service: Service) -> None:
    document = {"accounts": [{"id": "newcomer", "api_keys": [API_KEY]}]}
    with pytest.raises(ProvisioningError, match="already issued to another account") as caught:
        await service.provision(document)
    assert API_KEY not in str(caught.value)


# --- `reachout apply FILE` ----------------------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("REACHOUT_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.delenv("REACHOUT_CONFIG", raising=False)
    monkeypatch.setenv("REACHOUT_LOG_JSON", "false")
    yield path
    structlog.reset_defaults()  # the command configures logging against the runner's (now closed) stream


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("accounts", "api_keys", "projects", "phone_numbers")
        }


def test_cli_apply_provisions_a_file(tmp_path: Path, cli_database: Path) -> None:
    path = tmp_path / "reachout.yaml"
    path.write_text(yaml.safe_dump(standard_document()), encoding="utf-8")

    result = CliRunner().invoke(cli, ["apply", str(path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # undo the console's line wrapping
    assert f"Applied {path}: 2 accounts, 3 projects, 4 numbers." in output
    assert table_counts(cli_database) == {"accounts": 2, "api_keys": 2, "projects": 3, "phone_numbers": 4}

    again = CliRunner().invoke(cli, ["apply", str(path)])
    assert again.exit_code == 0, again.output
    assert table_counts(cli_database) == {"accounts": 2, "api_keys": 2, "projects": 3, "phone_numbers": 4}


def test_cli_apply_refuses_a_bad_file_with_exit_code_2(tmp_path: Path, cli_database: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(two_projects(numbers=[{"number": "4155550120"}])), encoding="utf-8")

    result = CliRunner().invoke(cli, ["apply", str(path)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # undo the console's line wrapping
    assert "accounts[0].projects[1].numbers[0].number" in output
    assert "E.164" in output and "bad.yaml" in output


def test_cli_apply_refuses_a_missing_file_with_exit_code_2(tmp_path: Path, cli_database: Path) -> None:
    result = CliRunner().invoke(cli, ["apply", str(tmp_path / "nowhere.yaml")])
    assert result.exit_code == 2, result.output
    assert "cannot read" in result.output


def test_cli_apply_refuses_a_conflict_with_exit_code_2(tmp_path: Path, cli_database: Path) -> None:
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(yaml.safe_dump(standard_document()), encoding="utf-8")
    intruder = {"accounts": [{"id": "x", "projects": [{"id": "intruder", "numbers": [{"number": SENDER}]}]}]}
    second.write_text(yaml.safe_dump(intruder), encoding="utf-8")

    assert CliRunner().invoke(cli, ["apply", str(first)]).exit_code == 0
    result = CliRunner().invoke(cli, ["apply", str(second)])
    assert result.exit_code == 2, result.output
    assert "already provisioned to project 'clinic'" in " ".join(result.output.split())
    assert table_counts(cli_database)["projects"] == 3
