"""The handset behind `reachout phone`, its keyboard and screen in the test: whom it texts, and how it rides
out a server that is not up yet, goes away, or answers with an error."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from reachout.carriers.sandbox.phone import Handset, backoff
from tests.support import processes

DEMO = Path(__file__).parents[1] / "demo.yaml"
USER = "+14155551234"
FRONT_DESK, SURGERY = "+14155550100", "+14155550101"  # the demo's two sandbox numbers
REPLY = "Can I move it to 3pm instead?"
ANSWER = "Of course \u2014 I\u2019ve rescheduled your appointment to 3pm tomorrow. See you then!"
FAST = {
    "REACHOUT_DEBOUNCE_SECONDS": "0.2",
    "REACHOUT_WORKER_POLL_SECONDS": "0.05",
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.05",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.1",
}
NOWHERE = "http://127.0.0.1:9"  # only the mock transports below answer for it


class Keyboard:
    """What the user types, line by line, for the handset's `read_line`; `end` is Ctrl-D."""

    def __init__(self) -> None:
        self._lines: asyncio.Queue[str] = asyncio.Queue()

    def type(self, line: str) -> None:
        self._lines.put_nowait(line + "\n")

    def end(self) -> None:
        self._lines.put_nowait("")

    async def __call__(self) -> str:
        return await self._lines.get()


class Screen:
    """What the handset printed, without colour."""

    def __init__(self) -> None:
        self.file = io.StringIO()
        self.console = Console(file=self.file, width=300, color_system=None, emoji=False)

    @property
    def text(self) -> str:
        return self.file.getvalue()

    def count(self, text: str) -> int:
        return self.text.count(text)

    async def wait_for(self, text: str, times: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(text) < times:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not shown {times} time(s); the screen shows:\n{self.text}")
            await asyncio.sleep(0.01)


def quick(server: str, keyboard: Keyboard, screen: Screen, **options: Any) -> Handset:
    """A handset polling and retrying every few milliseconds, so that no test waits out a real delay."""
    return Handset(
        USER,
        server,
        console=screen.console,
        read_line=keyboard,
        poll_seconds=0.02,
        retry_seconds=0.01,
        retry_cap_seconds=0.05,
        **options,
    )


@asynccontextmanager
async def running(handset: Handset) -> AsyncIterator[asyncio.Task[None]]:
    """The handset running in the background, stopped after the block; if it failed, so does the test."""
    task = asyncio.create_task(handset.run())
    try:
        yield task
    finally:
        if task.done():
            task.result()
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def greet(server: str, agent_number: str, body: str, user: str = USER) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.post(
            "/v1/outbound-sms",
            json={"message": body, "user_number": user, "agent_number": agent_number},
            headers={"X-PolyAi-Auth-Token": "rk_demo_key_123456", "X-TOKEN-ID": "conn_demo_clinic"},
        )
    assert response.status_code == 202, response.text


async def sent_by_handset(server: str, user: str = USER) -> list[dict[str, str]]:
    """What the handset texted, as the server recorded it."""
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get(f"/sandbox/handsets/{user}/messages")
    assert response.status_code == 200, response.text
    return [message for message in response.json() if message["direction"] == "from_handset"]


async def sent_once_recorded(server: str, timeout: float = 20.0) -> list[dict[str, str]]:
    """What the handset texted, once the server has recorded something."""
    deadline = time.monotonic() + timeout
    while not (sent := await sent_by_handset(server)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server recorded no text from the handset in {timeout}s")
        await asyncio.sleep(0.02)
    return sent


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not so after {timeout}s")
        await asyncio.sleep(0.01)


def texted(agent_number: str, body: str) -> dict[str, str]:
    """A text the handset received, as the sandbox lists it."""
    return {
        "direction": "to_handset",
        "from": agent_number,
        "to": USER,
        "body": body,
        "at": "2025-01-02T12:12:00Z",
    }


def answer_line(screen: Screen) -> str:
    return next(line for line in screen.text.splitlines() if ANSWER in line)


# --- whom it texts ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_it_answers_the_number_that_texted_it_last(database_url: str, tmp_path: Path) -> None:
    server = processes.server(database_url, DEMO, tmp_path, extra_env=FAST)
    server.start()
    keyboard, screen = Keyboard(), Screen()
    try:
        await greet(server.base_url, FRONT_DESK, "Hi Jane, the front desk here: see you tomorrow at 2pm.")
        async with running(quick(server.base_url, keyboard, screen)):
            await screen.wait_for(f"{FRONT_DESK} > Hi Jane, the front desk here")
            # A later text, arriving while the phone runs, from the demo's other number.
            await greet(server.base_url, SURGERY, "Hi Jane, your appointment is confirmed for 2pm tomorrow.")
            await screen.wait_for(f"{SURGERY} > Hi Jane, your appointment")
            keyboard.type(REPLY)
            assert [message["to"] for message in await sent_once_recorded(server.base_url)] == [SURGERY]
            await screen.wait_for(ANSWER)
            assert f"{SURGERY} > " in answer_line(screen)
            keyboard.end()
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_with_to_it_texts_that_number_whoever_texted_last(database_url: str, tmp_path: Path) -> None:
    server = processes.server(database_url, DEMO, tmp_path, extra_env=FAST)
    server.start()
    keyboard, screen = Keyboard(), Screen()
    try:
        await greet(server.base_url, FRONT_DESK, "Hi Jane, your appointment is confirmed for 2pm tomorrow.")
        async with running(quick(server.base_url, keyboard, screen, to=FRONT_DESK)):
            await screen.wait_for(f"{FRONT_DESK} > Hi Jane")
            await greet(server.base_url, SURGERY, "Hi Jane, the surgery here: see you tomorrow at 2pm.")
            await screen.wait_for(f"{SURGERY} > Hi Jane, the surgery here")
            keyboard.type(REPLY)
            assert [message["to"] for message in await sent_once_recorded(server.base_url)] == [FRONT_DESK]
            await screen.wait_for(ANSWER)
            assert f"{FRONT_DESK} > " in answer_line(screen)
            keyboard.end()
    finally:
        server.stop()


# --- a server that is not there -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_it_waits_for_a_server_that_is_not_up_yet(database_url: str, tmp_path: Path) -> None:
    server = processes.server(database_url, DEMO, tmp_path, extra_env=FAST)  # its port: nothing listens yet
    keyboard, screen = Keyboard(), Screen()
    try:
        async with running(quick(server.base_url, keyboard, screen, to=FRONT_DESK)) as phone:
            await screen.wait_for(f"the server at {server.base_url} cannot be reached; still trying")
            keyboard.type(REPLY)
            await screen.wait_for(f"held: it is sent when the server at {server.base_url} answers again")
            await asyncio.to_thread(server.start)
            await screen.wait_for(f"(the server at {server.base_url} answers again)")
            await sent_once_recorded(server.base_url)
            keyboard.end()
            await asyncio.wait_for(phone, 20)
        assert [(m["to"], m["body"]) for m in await sent_by_handset(server.base_url)] == [(FRONT_DESK, REPLY)]
        # Tried many times while the server started, said so once.
        assert screen.count("cannot be reached") == 1
        assert "Traceback" not in screen.text
        assert "not sent" not in screen.text
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_it_rides_out_a_server_that_goes_away_and_comes_back(database_url: str, tmp_path: Path) -> None:
    server = processes.server(database_url, DEMO, tmp_path, extra_env=FAST)
    server.start()
    keyboard, screen = Keyboard(), Screen()
    try:
        await greet(server.base_url, SURGERY, "Hi Jane, your appointment is confirmed for 2pm tomorrow.")
        async with running(quick(server.base_url, keyboard, screen)):
            await screen.wait_for(f"{SURGERY} > Hi Jane")
            await asyncio.to_thread(server.stop)
            await screen.wait_for(f"the server at {server.base_url} cannot be reached; still trying")
            keyboard.type(REPLY)
            await screen.wait_for("held: it is sent when")
            await asyncio.to_thread(server.start)
            await screen.wait_for(f"(the server at {server.base_url} answers again)")
            await screen.wait_for(ANSWER)
            assert f"{SURGERY} > " in answer_line(screen)
            keyboard.end()
        assert [(m["to"], m["body"]) for m in await sent_by_handset(server.base_url)] == [(SURGERY, REPLY)]
        assert screen.count("cannot be reached") == 1
        assert "not sent" not in screen.text
    finally:
        server.stop()


# --- on a transport the test plays: answers that are no use, outages at awkward moments ---------------------


async def test_an_error_status_while_watching_is_one_line_and_it_carries_on() -> None:
    polls = itertools.count()

    def answer(request: httpx.Request) -> httpx.Response:
        if next(polls) < 5:
            return httpx.Response(503, text="<html>down for maintenance</html>")
        return httpx.Response(200, json=[])

    keyboard, screen = Keyboard(), Screen()
    handset = quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer))
    async with running(handset) as phone:
        await screen.wait_for(f"(the server at {NOWHERE} answers again)")
        keyboard.end()
        await asyncio.wait_for(phone, 5)
    assert screen.count(f"the server at {NOWHERE} answered 503 Service Unavailable; still trying") == 1


async def test_an_error_status_on_sending_is_one_line() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(500, text="Internal Server Error")  # not JSON
        return httpx.Response(200, json=[])

    keyboard, screen = Keyboard(), Screen()
    async with running(
        quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer))
    ) as phone:
        keyboard.type(REPLY)
        await screen.wait_for(f"(not sent: the server at {NOWHERE} answered 500 Internal Server Error)")
        keyboard.type("and another")
        await screen.wait_for("(not sent:", times=2)
        keyboard.end()
        await asyncio.wait_for(phone, 5)


async def test_a_refusal_on_sending_says_why() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(403, json={"detail": "to: +14155550199 is not a sandbox number."})
        return httpx.Response(200, json=[])

    keyboard, screen = Keyboard(), Screen()
    async with running(
        quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer))
    ) as phone:
        keyboard.type(REPLY)
        await screen.wait_for("(not sent: to: +14155550199 is not a sandbox number.)")
        keyboard.end()
        await asyncio.wait_for(phone, 5)


async def test_quitting_while_the_server_is_away_says_what_was_not_sent() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request)

    keyboard, screen = Keyboard(), Screen()
    async with running(
        quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer))
    ) as phone:
        await screen.wait_for("cannot be reached; still trying")
        keyboard.type(REPLY)
        keyboard.type("and another")
        keyboard.end()
        await asyncio.wait_for(phone, 5)
    assert screen.count(f"held: it is sent when the server at {NOWHERE} answers again") == 2  # one a text
    assert screen.count("not sent") == 1
    assert f"(not sent: 2 texts, as the server at {NOWHERE} cannot be reached)" in screen.text


async def test_ctrl_c_while_the_server_is_away_says_what_was_not_sent() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request)

    keyboard, screen = Keyboard(), Screen()
    phone = asyncio.create_task(
        quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer)).run()
    )
    await screen.wait_for("cannot be reached; still trying")
    keyboard.type(REPLY)
    await screen.wait_for("held: it is sent when")
    phone.cancel()  # what `asyncio.run` does to its task on Ctrl-C
    with contextlib.suppress(asyncio.CancelledError):
        await phone
    assert f"(not sent: 1 text, as the server at {NOWHERE} cannot be reached)" in screen.text


async def test_a_text_held_with_nobody_to_text_yet_goes_to_the_last_sender_once_the_server_is_up() -> None:
    up = asyncio.Event()
    tries: list[httpx.Request] = []
    posts: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if not up.is_set():
            tries.append(request)
            raise httpx.ConnectError("All connection attempts failed", request=request)
        if request.method == "POST":
            posts.append(json.loads(request.content))
            return httpx.Response(201, json={"sid": "SM1"})
        return httpx.Response(200, json=[texted(FRONT_DESK, "the front desk here"), texted(SURGERY, "hi")])

    keyboard, screen = Keyboard(), Screen()
    async with running(quick(NOWHERE, keyboard, screen, transport=httpx.MockTransport(answer))) as phone:
        await screen.wait_for("cannot be reached; still trying")
        keyboard.type(REPLY)
        await screen.wait_for("held: it is sent when")
        await eventually(lambda: len(tries) >= 5)  # it keeps trying, and says nothing more
        up.set()
        await screen.wait_for(f"{SURGERY} > hi")
        keyboard.end()
        await asyncio.wait_for(phone, 5)
    assert posts == [{"from": USER, "to": SURGERY, "body": REPLY}]
    assert screen.count("cannot be reached") == 1
    assert "nobody to text" not in screen.text
    assert "not sent" not in screen.text


async def test_a_server_that_started_over_on_another_database_shows_what_it_holds() -> None:
    restarted = asyncio.Event()
    before = [texted(FRONT_DESK, "one"), texted(FRONT_DESK, "two"), texted(FRONT_DESK, "three")]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[texted(SURGERY, "a new start")] if restarted.is_set() else before)

    keyboard, screen = Keyboard(), Screen()
    async with running(quick(NOWHERE, keyboard, screen, transport=httpx.MockTransport(answer))) as phone:
        await screen.wait_for(f"{FRONT_DESK} > three")
        restarted.set()
        await screen.wait_for(f"{SURGERY} > a new start")
        keyboard.end()
        await asyncio.wait_for(phone, 5)


async def test_a_list_that_is_not_of_messages_is_one_line_and_it_carries_on() -> None:
    polls = itertools.count()

    def answer(request: httpx.Request) -> httpx.Response:
        if next(polls) < 5:
            return httpx.Response(200, json=[{"direction": "to_handset", "body": "no sender, no time"}])
        return httpx.Response(200, json=[texted(SURGERY, "hi")])

    keyboard, screen = Keyboard(), Screen()
    async with running(quick(NOWHERE, keyboard, screen, transport=httpx.MockTransport(answer))) as phone:
        await screen.wait_for(f"{SURGERY} > hi")
        keyboard.end()
        await asyncio.wait_for(phone, 5)
    assert screen.count(f"the server at {NOWHERE} answered with no list of messages; still trying") == 1


@pytest.mark.parametrize("address", ["127.0.0.1:8080", "localhost:8080", "ftp://127.0.0.1", "http://x:port"])
async def test_an_address_that_is_no_server_says_so_and_quits(address: str) -> None:
    keyboard, screen = Keyboard(), Screen()
    await asyncio.wait_for(quick(address, keyboard, screen).run(), 5)
    assert screen.text.splitlines() == [
        f"({address} is not a server's address; give one such as http://127.0.0.1:8080)"
    ]


async def test_a_text_the_server_never_got_is_sent_once_it_is_back() -> None:
    away, went = asyncio.Event(), asyncio.Event()
    posts: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not went.is_set():
            went.set()
            away.set()  # it went away between the last look and this text
        if away.is_set():
            raise httpx.ConnectError("All connection attempts failed", request=request)
        if request.method == "POST":
            posts.append(json.loads(request.content))
            return httpx.Response(201, json={"sid": "SM1"})
        return httpx.Response(200, json=[])

    keyboard, screen = Keyboard(), Screen()
    async with running(
        quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer))
    ) as phone:
        keyboard.type(REPLY)
        await screen.wait_for(f"the server at {NOWHERE} cannot be reached; still trying")
        await screen.wait_for(f"held: it is sent when the server at {NOWHERE} answers again")
        away.clear()
        await screen.wait_for(f"(the server at {NOWHERE} answers again)")
        keyboard.end()
        await asyncio.wait_for(phone, 5)
    assert posts == [{"from": USER, "to": FRONT_DESK, "body": REPLY}]
    assert screen.count("cannot be reached") == 1
    assert "not sent" not in screen.text


async def test_a_text_that_may_have_reached_the_server_is_not_sent_twice() -> None:
    posts: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json=[])

    keyboard, screen = Keyboard(), Screen()
    async with running(
        quick(NOWHERE, keyboard, screen, to=FRONT_DESK, transport=httpx.MockTransport(answer))
    ) as phone:
        keyboard.type(REPLY)
        await screen.wait_for("(perhaps not sent, and not sent again: timed out)")
        keyboard.end()
        await asyncio.wait_for(phone, 5)
    assert len(posts) == 1


def test_the_delay_between_tries_doubles_up_to_a_cap() -> None:
    assert list(itertools.islice(backoff(0.5, 4.0), 6)) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
