"""`reachout events tail`: the event log as it is recorded, a line per event, as `stripe listen` prints.

It follows `GET /api/v1/events?order=asc` from a few seconds before it starts. An event's id is a UUIDv7
taken before its transaction commits, so a slower transaction can commit an older id after a newer one was
printed: each poll looks back `LOOK_BACK_SECONDS` (a cursor made of that instant) and skips the ids already
printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.text import Text

POLL_SECONDS = 0.5
LOOK_BACK_SECONDS = 5.0
REMEMBERED = 10_000  # ids printed, kept to skip them when a poll looks back
COLOURS = {"message": "cyan", "conversation": "magenta", "contact": "yellow"}


def cursor_at(unix_seconds: float) -> str:
    """The smallest UUIDv7 of an instant: every event id taken since sorts after it."""
    millis = f"{max(int(unix_seconds * 1000), 0):012x}"
    return f"{millis[:8]}-{millis[8:]}-7000-8000-000000000000"


def summary(event: Mapping[str, Any]) -> str:
    """What an event is about, in a few words."""
    data: Mapping[str, Any] = event.get("data") or {}
    kind = str(event.get("type", ""))
    if kind.startswith("message."):
        body = str(data.get("body") or "")
        shown = body if len(body) <= 40 else body[:39] + "…"
        code = f" error {data['error_code']}" if data.get("error_code") else ""
        quoted = json.dumps(shown, ensure_ascii=False)
        return f"{data.get('id')} {data.get('from')} → {data.get('to')}{code} {quoted}"
    if kind.startswith("conversation."):
        reason = f" ({data['end_reason']})" if data.get("end_reason") else ""
        return f"{data.get('id')} {data.get('agent_number')} ↔ {data.get('user_number')}{reason}"
    if kind.startswith("contact."):
        return f"{data.get('phone_number')} ({data.get('keyword')})"
    return str(event.get("id"))


def line(event: Mapping[str, Any]) -> Text:
    """One event as a line: the time it happened (local), its type, its subject."""
    moment = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00")).astimezone()
    kind = str(event.get("type", ""))
    text = Text(moment.strftime("%H:%M:%S.%f")[:-3] + "  ", style="dim")
    text.append(f"{kind:<28}", style=COLOURS.get(kind.split(".", 1)[0], "white"))
    text.append(summary(event))
    return text


class Tail:
    """Follows one account's events through reachout's API and prints each once."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        console: Console,
        *,
        projects: Sequence[str] = (),
        types: Sequence[str] = (),
        raw: bool = False,
    ) -> None:
        self._client = client
        self._console = console
        self._projects = list(projects)
        self._types = list(types)
        self._raw = raw
        self._printed: OrderedDict[str, None] = OrderedDict()

    async def run(self, stop: asyncio.Event, started: float | None = None) -> None:
        """Print events recorded from `started` (unix time; default now) until `stop` is set."""
        since = time.time() if started is None else started
        while not stop.is_set():
            polled = time.time()
            await self.poll(cursor_at(since - LOOK_BACK_SECONDS))
            since = polled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)

    async def poll(self, cursor: str) -> int:
        """Print the events after `cursor` not printed yet; returns how many it printed."""
        printed = 0
        while True:
            params: dict[str, Any] = {"order": "asc", "limit": 100, "cursor": cursor}
            if self._types:
                params["type"] = ",".join(self._types)
            response = await self._client.get("/api/v1/events", params=params)
            if response.status_code != 200:
                raise TailRefused(response)
            page = response.json()
            for event in page["data"]:
                if event["id"] in self._printed:
                    continue
                if self._projects and event.get("project_id") not in self._projects:
                    continue
                self._remember(event["id"])
                printed += 1
                if self._raw:
                    self._console.print_json(json.dumps(event, ensure_ascii=False), indent=None)
                else:
                    self._console.print(line(event), soft_wrap=True)
            if not page["has_more"]:
                return printed
            cursor = page["next_cursor"]

    def _remember(self, event_id: str) -> None:
        self._printed[event_id] = None
        if len(self._printed) > REMEMBERED:
            self._printed.popitem(last=False)


class TailRefused(Exception):
    """The API refused the tail: its status and what it said."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        super().__init__(f"{response.status_code}: {message}")


def follow(
    server: str, key: str | None, projects: Sequence[str], types: Sequence[str], *, raw: bool, errors: Console
) -> int:
    """`reachout events tail`: follow `server`'s log with `key` until Ctrl-C; the command's exit status."""
    if not key:
        errors.print("[red]Give an API key: --key KEY or REACHOUT_API_KEY.[/red]")
        return 2

    async def run() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.rstrip("/"), headers=headers, timeout=10.0) as client:
            await Tail(client, Console(), projects=projects, types=types, raw=raw).run(asyncio.Event())

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    except TailRefused as error:
        errors.print(f"[red]reachout refused the tail: {error}[/red]", highlight=False)
        return 1
    except httpx.HTTPError as error:
        errors.print(f"[red]Cannot reach {server}: {error}[/red]", highlight=False)
        return 1
    return 0
