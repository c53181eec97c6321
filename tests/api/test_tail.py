"""`reachout events tail`: each event printed once, as it is recorded, also when an older id commits late."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from reachout.api.tail import Tail, TailRefused, cursor_at
from reachout.events.models import Event
from reachout.kit.clock import FakeClock
from tests.support import fuzzing
from tests.support.chat import Chat, greet
from tests.support.polyai import EXAMPLE, PATH
from tests.support.provisioning import API_KEY, POLYAI_HEADERS, SENDER
from tests.support.webhooks import near_real_clock

GREETING = ["conversation.started", "message.queued", "message.sending", "message.sent", "message.delivered"]


@pytest.fixture
def clock() -> FakeClock:
    return near_real_clock()


def tail_of(chat: Chat, key: str = API_KEY, **options: object) -> tuple[Tail, io.StringIO]:
    out = io.StringIO()
    client = chat.service.client
    client.headers["Authorization"] = f"Bearer {key}"
    console = Console(file=out, width=200, color_system=None)
    return Tail(client, console, **options), out  # type: ignore[arg-type]


async def test_each_event_is_printed_once_in_the_order_recorded(webhooked: Chat) -> None:
    tail, out = tail_of(webhooked)
    await greet(webhooked)
    await webhooked.settle(5)
    assert await tail.poll(cursor_at(0)) == len(GREETING)
    assert await tail.poll(cursor_at(0)) == 0, "nothing twice"
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == GREETING
    assert f"{SENDER} → " in lines[-1] and '"Hi Jane, your appointment' in lines[-1]


async def test_an_older_id_committed_late_is_still_printed(webhooked: Chat) -> None:
    tail, out = tail_of(webhooked)
    await greet(webhooked)
    await tail.poll(cursor_at(0))
    late = cursor_at(time.time() - 2).replace("-8000-000000000000", "-8000-0000000000ff")
    async with webhooked.service.runtime.database.write.begin() as session:
        session.add(
            Event(
                id=late,
                type="contact.opted_out",
                project_id="clinic",
                occurred_at=webhooked.clock.now(),
                data={"phone_number": "+14155551234", "keyword": "STOP"},
                details={},
            )
        )
    assert await tail.poll(cursor_at(time.time() - 5)) == 1
    assert out.getvalue().splitlines()[-1].split()[1] == "contact.opted_out"


async def test_filters_and_raw_json(webhooked: Chat) -> None:
    tail, out = tail_of(webhooked, types=["conversation.*"], raw=True)
    await greet(webhooked)
    assert await tail.poll(cursor_at(0)) == 1
    [printed] = out.getvalue().splitlines()
    assert json.loads(printed)["type"] == "conversation.started"
    elsewhere, quiet = tail_of(webhooked, projects=["empty"])
    assert await elsewhere.poll(cursor_at(0)) == 0 and quiet.getvalue() == ""


async def test_an_unknown_key_is_refused(webhooked: Chat) -> None:
    tail, _ = tail_of(webhooked, key="rk_nobody_at_all_0123456789")
    with pytest.raises(TailRefused, match="401"):
        await tail.poll(cursor_at(0))


@pytest.mark.slow
def test_the_command_follows_a_running_server(database_url: str, tmp_path: Path) -> None:
    with fuzzing.running_server(database_url, tmp_path, worker=True) as server:
        env = os.environ | {"REACHOUT_API_KEY": API_KEY}
        command = [sys.executable, "-m", "reachout.cli", "events", "tail", "--server", server.base_url]
        follower = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            time.sleep(1.0)  # it has polled once
            sent = httpx.post(
                f"{server.base_url}{PATH}", json=EXAMPLE | {"agent_number": SENDER}, headers=POLYAI_HEADERS
            )
            assert sent.status_code == 202
            time.sleep(2.0)  # the worker hands it off; the tail polls twice a second
        finally:
            follower.send_signal(signal.SIGINT)
            stdout, stderr = follower.communicate(timeout=10)
        printed = [line.split()[1] for line in stdout.splitlines() if line.strip()]
        assert printed[:3] == GREETING[:3], stdout + stderr
