"""No statement on the send path scans a table that grows with traffic.

Every statement the accept path, the dispatcher and the sandbox's status reports run is captured and put
through SQLite's EXPLAIN QUERY PLAN: a full scan of a growing table makes each batch slower as the table
fills, which no functional test notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from tests.support.provisioning import API_KEY, CONNECTOR, SENDER, USE_CASE, USER, use_case_document
from tests.support.service import Service

GROWING_TABLES = ("conversations", "messages", "events", "webhook_deliveries", "sandbox_messages")
HEADERS = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR}


class StatementLog:
    """The statements an engine ran, with their parameters."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def record(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")) and not many:
            self.statements.append((statement, parameters))


def scans_of_growing_tables(path: str, log: StatementLog) -> Iterator[tuple[str, str]]:
    """Plan steps that read a growing table whole, or all of one project's rows (one tenant's traffic)."""
    connection = sqlite3.connect(path)
    try:
        for statement, parameters in log.statements:
            for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters or ()):
                detail = str(row[-1])
                for table in GROWING_TABLES:
                    whole = detail == f"SCAN {table}" or detail.startswith(f"SCAN {table} ")
                    by_project = detail.startswith(f"SEARCH {table} ") and detail.endswith("(project_id=?)")
                    if whole or by_project:
                        yield statement, detail
    finally:
        connection.close()


@contextlib.contextmanager
def statements_of(service: Service) -> Iterator[StatementLog]:
    """The statements the service's engines run meanwhile."""
    log = StatementLog()
    database = service.runtime.database
    engines = {database.writer_engine.sync_engine, database.reader_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", log.record)
    try:
        yield log
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", log.record)


def database_path(service: Service) -> str:
    path = make_url(service.runtime.database.url).database
    assert path is not None
    return path


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_send_path_never_scans_a_growing_table(service: Service) -> None:
    with statements_of(service) as log:
        for _ in range(2):  # the second round supersedes the first round's sessions and reuses their senders
            # Sent together, so they are group-committed and each statement covers several sessions.
            responses = await asyncio.gather(
                *(
                    service.client.post(
                        "/v1/outbound-sms", json={"message": "Hi there", "user_number": user}, headers=HEADERS
                    )
                    for user in (USER, "+14155550123", "+14155550124")
                )
            )
            assert [r.status_code for r in responses] == [202, 202, 202]
        payload = {"message": "Hi again", "user_number": USER, "agent_number": SENDER}
        assert (
            await service.client.post("/v1/outbound-sms", json=payload, headers=HEADERS)
        ).status_code == 202
        await service.settle()
        assert (await service.client.get("/metrics")).status_code == 200  # its gauges read the outbox

    touched = " ".join(statement for statement, _ in log.statements)
    assert "UPDATE conversations" in touched and "FROM messages" in touched  # the log saw the hot path
    assert "count(*)" in touched  # and the scrape's
    assert list(scans_of_growing_tables(database_path(service), log)) == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_reply_to_a_use_case_text_never_scans_a_growing_table(service: Service) -> None:
    await service.provision(use_case_document())
    headers = {"Authorization": f"Bearer {API_KEY}"}
    for user in (USER, "+14155550123"):  # two people, so a reply must find its own person's text
        body = {"use_case_id": USE_CASE, "to_phone_number": user, "message": "Sale on Monday"}
        assert (await service.client.post("/v1/sms/", json=body, headers=headers)).status_code == 201
    await service.settle()
    handset = (await service.client.get(f"/sandbox/handsets/{USER}/messages")).json()
    with statements_of(service) as log:
        reply = {"from": USER, "to": handset[0]["from"], "body": "what sale?"}
        assert (await service.client.post("/sandbox/inbound", json=reply)).status_code == 201
        await service.settle(5)

    touched = " ".join(statement for statement, _ in log.statements)
    assert "use_case_id IS NOT NULL" in touched  # the log saw the reply look for the text it answers
    assert list(scans_of_growing_tables(database_path(service), log)) == []
