"""`reachout phone`: a virtual handset in the terminal, talking to a running reachout's sandbox over HTTP.

It shows what its number receives as it arrives (by polling `GET /sandbox/handsets/{number}/messages`) and
texts what you type to an agent number (`POST /sandbox/inbound`): the one given with `--to`, else the one it
last heard from. It is a client of the sandbox's public routes only, so it works against any reachout.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from rich.console import Console
from rich.text import Text

POLL_SECONDS = 0.5


@dataclass
class Handset:
    """One virtual phone: its number, the server, and what it has shown so far."""

    number: str
    server: str
    to: str | None = None
    console: Console = field(default_factory=Console)
    shown: int = 0

    async def run(self) -> None:
        """Show incoming texts and send typed lines until the input ends (Ctrl-D) or Ctrl-C."""
        async with httpx.AsyncClient(base_url=self.server, timeout=10) as client:
            await self._catch_up(client)
            self._banner()
            watcher = asyncio.create_task(self._watch(client))
            try:
                await self._type(client)
            finally:
                watcher.cancel()

    def _banner(self) -> None:
        target = self.to or "the last number that texted you"
        self.console.print(
            Text.assemble(
                ("📱 ", ""),
                (self.number, "bold"),
                f" on {self.server} — type a message and press Enter to text {target}; Ctrl-D to quit.",
            )
        )

    async def _catch_up(self, client: httpx.AsyncClient) -> None:
        history = await self._history(client)
        for message in history:
            self._show(message)
        self.shown = len(history)

    async def _watch(self, client: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                history = await self._history(client)
            except httpx.HTTPError as error:
                self.console.print(Text(f"(cannot reach {self.server}: {error})", style="red"))
                continue
            for message in history[self.shown :]:
                if message["direction"] == "to_handset":  # what we sent was shown as we sent it
                    self._show(message)
            self.shown = len(history)

    async def _type(self, client: httpx.AsyncClient) -> None:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:  # end of input
                return
            body = line.rstrip("\n")
            if not body.strip():
                continue
            if self.to is None:
                self.console.print(
                    Text("(nobody to text yet: wait for a message, or start with --to)", "yellow")
                )
                continue
            response = await client.post(
                "/sandbox/inbound", json={"from": self.number, "to": self.to, "body": body}
            )
            if response.status_code != 201:
                self.console.print(Text(f"(not sent: {response.json().get('detail', response.text)})", "red"))

    async def _history(self, client: httpx.AsyncClient) -> list[dict[str, str]]:
        response = await client.get(f"/sandbox/handsets/{self.number}/messages")
        response.raise_for_status()
        messages: list[dict[str, str]] = response.json()
        return messages

    def _show(self, message: dict[str, str]) -> None:
        at = datetime.fromisoformat(message["at"].replace("Z", "+00:00")).astimezone().strftime("%H:%M")
        if message["direction"] == "to_handset":
            self.to = self.to or message["from"]
            self.console.print(
                Text.assemble((f"{at} ", "dim"), (f"{message['from']} > ", "cyan"), message["body"])
            )
        else:
            self.console.print(Text.assemble((f"{at} ", "dim"), ("you > ", "green"), message["body"]))
