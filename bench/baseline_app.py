"""The bare baseline reachout is measured against: FastAPI, a Pydantic body, one sqlite3 row per request.

`POST /v1/outbound-sms` validates the same JSON body as reachout's PolyAI dialect and inserts one row
with the standard library's sqlite3 in WAL mode (synchronous=NORMAL, as reachout configures SQLite in
src/reachout/db/engine.py), committing before it answers 202 with an empty body. No authentication, no
phone number parsing, no rate limit, no conversation: the cost of the web stack plus one durable insert.

The endpoint is `async def` and calls sqlite3 inline on the event loop: a WAL commit with
synchronous=NORMAL does not fsync, so it takes microseconds, and this is the fastest honest way to write
it (a plain `def` endpoint would add a thread-pool hop per request).

Run it as uvicorn runs reachout (`reachout serve`): uvloop, httptools, one process, no access log:

    .venv/bin/python bench/baseline_app.py --db /tmp/baseline.db --host 127.0.0.1 --port 8090
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response, status
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    user_number TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""
INSERT = "INSERT INTO messages (id, user_number, message, created_at) VALUES (?, ?, ?, ?)"


class OutboundSms(BaseModel):
    """The body of `POST /v1/outbound-sms`."""

    message: str
    user_number: str
    agent_number: str | None = None


def connect(path: Path) -> sqlite3.Connection:
    """One connection, WAL mode, synchronous=NORMAL: the same durability settings as reachout on SQLite."""
    connection = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute(SCHEMA)
    return connection


def create_app(path: Path) -> FastAPI:
    """The baseline application over the SQLite file at `path`."""
    connection: sqlite3.Connection | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal connection
        connection = connect(path)
        try:
            yield
        finally:
            connection.close()

    app = FastAPI(title="reachout bench baseline", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/outbound-sms", status_code=status.HTTP_202_ACCEPTED, response_class=Response)
    async def outbound_sms(body: OutboundSms) -> Response:
        assert connection is not None
        row = (str(uuid.uuid4()), body.user_number, body.message, datetime.now(UTC).isoformat())
        connection.execute("BEGIN")
        try:
            connection.execute(INSERT, row)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return Response(status_code=status.HTTP_202_ACCEPTED)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    # The same uvicorn settings as `reachout serve` (src/reachout/cli.py).
    uvicorn.run(
        create_app(args.db),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
