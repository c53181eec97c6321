"""The logs of a real `reachout serve`: its start-up line, and one message followed by its id from accept to
delivered through the server's and its worker process's lines, one stream in one format."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.engine import make_url

from reachout.db.engine import open_database
from reachout.messaging.models import Message
from tests.support.chat import project_document
from tests.support.polyai import EXAMPLE, EXAMPLE_MESSAGE, PATH
from tests.support.processes import ReachoutProcess, server
from tests.support.provisioning import API_KEY, POLYAI_HEADERS, USER

pytestmark = pytest.mark.slow

PASSWORD = "s3cretpw"  # PostgreSQL's trust authentication ignores it; no line may show it
FAST_SANDBOX = {
    "REACHOUT_LOG_JSON": "true",
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.05",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.1",
}


def provisioning_file(tmp_path: Path) -> Path:
    """The standard document, its clinic project with an agent: 3 projects, 4 numbers, 1 agent."""
    path = tmp_path / "provision.yaml"
    path.write_text(yaml.safe_dump(project_document()))
    return path


def with_password(database_url: str) -> str:
    """The URL with a password in it, on PostgreSQL (SQLite has none to give)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return database_url
    return url.set(password=PASSWORD).render_as_string(hide_password=False)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the log, each a JSON object (a line that is not fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def only_message_id(database_url: str) -> str:
    database = open_database(database_url)
    try:
        async with database.read() as session:
            return str((await session.execute(select(Message.id))).scalar_one())
    finally:
        await database.dispose()


def start(database_url: str, tmp_path: Path, *, worker: bool = True, **env: str) -> ReachoutProcess:
    config = provisioning_file(tmp_path)
    return server(database_url, config, tmp_path, worker=worker, extra_env=FAST_SANDBOX | env).start()


def test_one_message_is_followed_by_its_id_from_accept_to_delivered(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    url = with_password(database_url)
    assert (PASSWORD in url) is (backend == "postgresql")
    api = start(url, tmp_path)
    try:
        response = httpx.post(f"{api.base_url}{PATH}", json=EXAMPLE, headers=POLYAI_HEADERS, timeout=30)
        assert response.status_code == 202, response.text
        api.wait_for_log('"event": "message delivered"')
    finally:
        api.stop()
    text = api.log_path.read_text()
    lines = json_lines(text)  # the worker's child process writes to the same stream, in the same format

    [started] = [line for line in lines if line["event"] == "reachout started"]
    assert started["address"] == api.base_url
    assert started["database"] == database_url  # the URL as given, less its password
    assert (started["carriers"], started["projects"], started["numbers"], started["agents"]) == (
        ["sandbox"],
        3,
        4,
        1,
    )
    assert started["worker"] == "child process"

    message_id = asyncio.run(only_message_id(url))
    # grep, as a person would: every line that names the message
    followed = [json.loads(line) for line in text.splitlines() if message_id in line]
    assert [line["event"] for line in followed] == [
        "message accepted",
        "message handed off",
        "message delivered",
    ]
    accepted, handed_off, delivered = followed
    assert accepted["component"] == "outreach" and handed_off["component"] == "dispatcher"
    assert len({line["conversation_id"] for line in followed}) == 1
    assert handed_off["carrier_sid"] == delivered["carrier_sid"] and handed_off["carrier_sid"].startswith(
        "SM"
    )
    assert (handed_off["carrier"], delivered["status"], accepted["project_id"]) == (
        "sandbox",
        "delivered",
        "clinic",
    )

    [request] = [line for line in lines if line["event"] == "http request" and line["path"] == PATH]
    assert (request["method"], request["status"], request["account_id"]) == ("POST", 202, "acme")
    for secret in (PASSWORD, API_KEY, USER, USER[2:], EXAMPLE_MESSAGE):
        assert secret not in text


def test_the_start_up_line_says_when_the_worker_runs_elsewhere(sqlite_template: Path, tmp_path: Path) -> None:
    """On `--no-worker` at debug: no worker line, and the health checks the test made are debug lines."""
    database = tmp_path / "reachout.db"
    database.write_bytes(sqlite_template.read_bytes())
    api = start(f"sqlite+aiosqlite:///{database}", tmp_path, worker=False, REACHOUT_LOG_LEVEL="debug")
    api.stop()
    lines = json_lines(api.log_path.read_text())
    [started] = [line for line in lines if line["event"] == "reachout started"]
    assert (started["worker"], started["log_level"], started["database"]) == (
        "not here",
        "debug",
        f"sqlite+aiosqlite:///{database}",
    )
    assert not [line for line in lines if line["component"] == "worker"]
    health = [line for line in lines if line["event"] == "http request" and line["path"] == "/healthz"]
    assert health and all(line["level"] == "debug" and line["status"] == 200 for line in health)
