"""`reachout phone`: a virtual handset in the terminal, talking to a running reachout's sandbox over HTTP.

It shows what its number receives as it arrives (by polling `GET /sandbox/handsets/{number}/messages`) and
texts what you type to an agent number (`POST /sandbox/inbound`): the one given with `--to`, else the one that
texted it last. It is a client of the sandbox's public routes only, so it works against any reachout.

While the server cannot be reached it says so once and keeps trying, backing off to a few seconds between
tries; what is typed meanwhile is held and sent, in order, when the server answers again. Quitting (Ctrl-D
or Ctrl-C) before then says how many texts were not sent.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

import httpx
from rich.console import Console
from rich.text import Text

POLL_SECONDS = 0.5
RETRY_SECONDS = 0.5
RETRY_CAP_SECONDS = 4.0
UNREACHABLE = "unreachable"


def backoff(first: float, cap: float) -> Iterator[float]:
    """Delays between tries: `first`, then twice the one before, never more than `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


class StdinLines:
    """Lines typed on standard input, read in a daemon thread so that quitting never waits for a line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: asyncio.Queue[str] | None = None

    async def __call__(self) -> str:
        """The next line with its newline, or "" at the end of input."""
        if self._lines is None:
            self._lines = asyncio.Queue()
            reader = threading.Thread(
                target=self._read, args=(asyncio.get_running_loop(), self._lines), daemon=True
            )
            reader.start()
        return await self._lines.get()

    def _read(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
        stream = self._stream or sys.stdin
        while True:
            line = stream.readline()
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the loop is closed: the phone has quit
                return
            if not line:
                return


@dataclass(frozen=True)
class Typed:
    """A typed line to text: its body, its target if one was known then, whether it was said to be held."""

    body: str
    to: str | None
    held: bool


class Trouble(Exception):
    """The server could not be asked, or gave no usable answer; `kind` tells one trouble from another."""

    def __init__(self, kind: str, line: str) -> None:
        super().__init__(line)
        self.kind = kind
        self.line = line


@dataclass
class Handset:
    """A virtual phone: its number, the server, where it texts, its terminal (`console`, `read_line`)."""

    number: str
    server: str
    to: str | None = None
    console: Console = field(default_factory=Console)
    read_line: Callable[[], Awaitable[str]] = field(default_factory=StdinLines)
    poll_seconds: float = POLL_SECONDS
    retry_seconds: float = RETRY_SECONDS
    retry_cap_seconds: float = RETRY_CAP_SECONDS
    transport: httpx.AsyncBaseTransport | None = None
    last_from: str | None = field(default=None, init=False)
    _seen: int | None = field(default=None, init=False)
    _trouble: Trouble | None = field(default=None, init=False)
    _up: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _down: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _outbox: asyncio.Queue[Typed] = field(default_factory=asyncio.Queue, init=False)
    _unsent: int = field(default=0, init=False)

    async def run(self) -> None:
        """Show incoming texts and send typed lines until the input ends (Ctrl-D) or Ctrl-C."""
        if not _is_address(self.server):  # retrying could not help, and "cannot be reached" would hide a typo
            self._note(
                f"{self.server} is not a server's address; give one such as http://127.0.0.1:8080", "red"
            )
            return
        async with httpx.AsyncClient(base_url=self.server, timeout=10, transport=self.transport) as client:
            try:
                history = await self._history(client)
            except Trouble as trouble:
                self._banner()
                self._lose(trouble)
            else:
                self._show_new(history)
                self._banner()
                self._regain()
            tasks = [asyncio.create_task(self._watch(client)), asyncio.create_task(self._send_typed(client))]
            try:
                await self._type()
                await self._finish()
            finally:  # Ctrl-C lands here too, cancelling the wait for held texts
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._tell_unsent()

    def _banner(self) -> None:
        target = self.to or "the last number that texted you"
        self.console.print(
            Text.assemble(
                ("📱 ", ""),
                (self.number, "bold"),
                f" on {self.server} — type a message and press Enter to text {target}; Ctrl-D to quit.",
            )
        )

    def _note(self, line: str, style: str) -> None:
        self.console.print(Text(f"({line})", style))

    def _lose(self, trouble: Trouble) -> None:
        if self._trouble is None or trouble.kind != self._trouble.kind:  # once per outage, not once per try
            self._note(f"{trouble.line}; still trying", "red")
        self._trouble = trouble
        self._up.clear()
        self._down.set()

    def _regain(self) -> None:
        if self._trouble is not None:
            self._note(f"the server at {self.server} answers again", "green")
        self._trouble = None
        self._down.clear()
        self._up.set()

    async def _watch(self, client: httpx.AsyncClient) -> None:
        delays = backoff(self.retry_seconds, self.retry_cap_seconds)
        while True:
            await asyncio.sleep(self.poll_seconds if self._up.is_set() else next(delays))
            try:
                history = await self._history(client)
            except Trouble as trouble:
                self._lose(trouble)
                continue
            delays = backoff(self.retry_seconds, self.retry_cap_seconds)
            # Nothing is awaited between the two, so the sender `_regain` wakes sees `last_from` as it is
            # after what arrived meanwhile: a held text with no target yet goes to the newest sender.
            self._regain()
            self._show_new(history)

    def _show_new(self, history: list[dict[str, str]]) -> None:
        if self._seen is None:  # the first look shows everything, what this number sent included
            fresh = history
        else:  # what we sent was shown as we typed it
            # A shorter record is a server started over on another database: all it holds is news.
            start = self._seen if len(history) >= self._seen else 0
            fresh = [message for message in history[start:] if message["direction"] == "to_handset"]
        for message in fresh:
            self._show(message)
        self._seen = len(history)

    async def _type(self) -> None:
        while True:
            line = await self.read_line()
            if not line:  # end of input
                return
            body = line.rstrip("\r\n")
            if not body.strip():
                continue
            held = not self._up.is_set()
            if held:
                self._note_held()
            # The target is taken as the line is typed: it answers whoever the user saw texting last.
            self._unsent += 1
            self._outbox.put_nowait(Typed(body, self.to or self.last_from, held))

    async def _finish(self) -> None:
        """Wait for typed texts to go out, unless the server cannot be reached."""
        sent, away = asyncio.create_task(self._outbox.join()), asyncio.create_task(self._down.wait())
        try:
            await asyncio.wait({sent, away}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sent.cancel()
            away.cancel()

    def _tell_unsent(self) -> None:
        if not self._unsent:
            return
        texts = f"{self._unsent} text" if self._unsent == 1 else f"{self._unsent} texts"
        if self._trouble is not None:
            self._note(f"not sent: {texts}, as {self._trouble.line}", "red")
        else:  # Ctrl-C while the server answers, before all went out
            self._note(f"perhaps not sent: {texts}, as the phone quit while sending", "red")

    def _note_held(self) -> None:
        self._note(f"held: it is sent when the server at {self.server} answers again", "yellow")

    async def _send_typed(self, client: httpx.AsyncClient) -> None:
        while True:
            typed = await self._outbox.get()
            try:
                await self._send(client, typed)
                self._unsent -= 1  # not when cancelled: quitting then counts it among those not sent
            finally:
                self._outbox.task_done()

    async def _send(self, client: httpx.AsyncClient, typed: Typed) -> None:
        held = typed.held
        while True:
            if not self._up.is_set():
                if not held:
                    self._note_held()
                    held = True
                await self._up.wait()
            target = typed.to or self.last_from
            if target is None:
                self._note("nobody to text yet: wait for a message, or start with --to", "yellow")
                return
            try:
                response = await client.post(
                    "/sandbox/inbound", json={"from": self.number, "to": target, "body": typed.body}
                )
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # No connection was made, so the server never saw this text: sending it again cannot
                # text twice.
                self._lose(self._unreachable())
                continue
            except httpx.HTTPError as error:
                # The server may have taken it; sending it again could text twice.
                self._note(f"perhaps not sent, and not sent again: {_describe(error)}", "red")
                return
            if response.status_code != 201:
                self._note(f"not sent: {_detail(response) or self._answered(response)}", "red")
            return

    def _unreachable(self) -> Trouble:
        return Trouble(UNREACHABLE, f"the server at {self.server} cannot be reached")

    def _answered(self, response: httpx.Response) -> str:
        """What the server answered: its status, and its own words when it gave some."""
        answered = f"the server at {self.server} answered {response.status_code} {response.reason_phrase}"
        detail = _detail(response)
        return answered if detail is None or detail == response.reason_phrase else f"{answered}: {detail}"

    async def _history(self, client: httpx.AsyncClient) -> list[dict[str, str]]:
        try:
            response = await client.get(f"/sandbox/handsets/{self.number}/messages")
        except httpx.TransportError:
            raise self._unreachable() from None
        if response.status_code != 200:
            raise Trouble(f"status {response.status_code}", self._answered(response))
        try:
            messages = response.json()
        except ValueError:
            messages = None
        if not isinstance(messages, list) or not all(_is_message(message) for message in messages):
            raise Trouble("unreadable", f"the server at {self.server} answered with no list of messages")
        return messages

    def _show(self, message: dict[str, str]) -> None:
        at = datetime.fromisoformat(message["at"].replace("Z", "+00:00")).astimezone().strftime("%H:%M")
        if message["direction"] == "to_handset":
            self.last_from = message["from"]
            self.console.print(
                Text.assemble((f"{at} ", "dim"), (f"{message['from']} > ", "cyan"), message["body"])
            )
        else:
            self.console.print(Text.assemble((f"{at} ", "dim"), ("you > ", "green"), message["body"]))


def _is_address(server: str) -> bool:
    try:
        url = httpx.URL(server)
    except httpx.InvalidURL:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _is_message(value: object) -> bool:
    """Whether `value` is a handset message as the sandbox gives it, so that showing it cannot fail."""
    if not isinstance(value, dict):
        return False
    if not all(isinstance(value.get(key), str) for key in ("direction", "from", "body", "at")):
        return False
    try:
        datetime.fromisoformat(value["at"].replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _describe(error: httpx.HTTPError) -> str:
    return str(error) or type(error).__name__


def _detail(response: httpx.Response) -> str | None:
    """The `detail` of an error answer in FastAPI's shape, if it is one."""
    try:
        answer = response.json()
    except ValueError:
        return None
    detail = answer.get("detail") if isinstance(answer, dict) else None
    return detail if isinstance(detail, str) and detail else None
