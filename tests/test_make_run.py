"""`make run` on the demo: the reference page's curl example reaches the handset and ends `delivered`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from reachout.db.engine import open_database
from reachout.messaging.models import Message
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GREETING = (
    "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
    "Reply to this message if you need to reschedule."
)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the API answers /healthz and its worker process has started its runners (a second or two after
    the API on a loaded machine: a greeting sent before then waits for it, and this test times delivery)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited:\n{log.read_text()[-3000:]}")
        try:
            healthy = httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and "worker running" in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"make run never became healthy:\n{log.read_text()[-3000:]}")


REPLY = "Can I move it to 3pm instead?"
ANSWER = "Of course \u2014 I\u2019ve rescheduled your appointment to 3pm tomorrow. See you then!"


async def test_make_run_serves_the_reference_example(tmp_path: Path) -> None:
    port = free_port()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHOUT_")}
    env["REACHOUT_DATABASE_URL"] = database_url
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, log)
        printed = log.read_text()
        assert f"curl -i -X POST {base_url}/v1/outbound-sms" in printed, "the walkthrough is printed"

        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.post(
                "/v1/outbound-sms",
                headers={
                    "X-PolyAi-Auth-Token": "rk_demo_key_123456",
                    "X-TOKEN-ID": "conn_demo_clinic",
                    "Content-Type": "application/json",
                },
                content=f'{{"message": "{GREETING}", "user_number": "+14155551234"}}',
            )
            assert (response.status_code, response.content) == (202, b"")
            accepted_at = time.monotonic()

            received: list[dict[str, str]] = []
            while time.monotonic() - accepted_at < 2.0 and not received:
                received = (await client.get("/sandbox/handsets/+14155551234/messages")).json()
            assert [m["body"] for m in received] == [GREETING]
            assert received[0]["direction"] == "to_handset"

        database = open_database(database_url)
        try:
            message = None
            while time.monotonic() - accepted_at < 2.0:
                async with database.read() as session:
                    message = (await session.execute(select(Message))).scalar_one()
                if message.status == "delivered":
                    break
        finally:
            await database.dispose()
        assert message is not None and message.status == "delivered", "delivered within 2 s"
        assert message.carrier_sid and message.carrier_sid.startswith("SM")
        assert message.num_segments == 1
        assert message.handed_off_at and message.delivered_at and message.created_at <= message.handed_off_at
        assert message.handed_off_at <= message.delivered_at

        # The person answers, and the demo's agent carries the conversation on, as the reference page shows.
        async with httpx.AsyncClient(base_url=base_url) as client:
            reply = {"from": "+14155551234", "to": received[0]["from"], "body": REPLY}
            assert (await client.post("/sandbox/inbound", json=reply)).status_code == 201
            deadline = time.monotonic() + 10  # the debounce window is 2 s
            while time.monotonic() < deadline:
                transcript = (await client.get("/sandbox/handsets/+14155551234/messages")).json()
                if len(transcript) >= 3:
                    break
                await asyncio.sleep(0.1)
            assert [(m["direction"], m["body"]) for m in transcript] == [
                ("to_handset", GREETING),
                ("from_handset", REPLY),
                ("to_handset", ANSWER),
            ]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
