"""What a carrier brings to a process, through the registry: its text port, its HTTP routes, its background
runners, the line-type lookup it can answer, and how it closes. `app.py` and the worker know only this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter

from reachout.carriers.base import CarrierEvents, TextCarrier
from reachout.config import Settings
from reachout.db.engine import Database
from reachout.kit.clock import Clock
from reachout.kit.jobs.runner import Runner
from reachout.phones.lookup import LineTypeLookup


class NumberDirectory(Protocol):
    """What a carrier may ask about the provisioned numbers (cached by the tenancy domain)."""

    async def carrier_of_number(self, number: str) -> str | None:
        """The carrier a provisioned number sends through; None for a number no project has."""
        ...

    async def carriers_beside(self, number: str) -> frozenset[str]:
        """The carriers of every number in the project that holds `number`."""
        ...

    async def carrier_in_use(self, carrier: str) -> bool:
        """Whether some provisioned number sends through this carrier."""
        ...


@dataclass(frozen=True)
class CarrierContext:
    """What a carrier's factory is given: the process's settings and shared parts, and the `carriers:` section
    of the provisioning file (plain data by carrier kind, each carrier reading its own)."""

    settings: Settings
    database: Database
    clock: Clock
    events: CarrierEvents
    numbers: NumberDirectory
    provisioned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class CarrierRoutes:
    """A carrier's HTTP routes. With `served`, the paths under `prefix` exist only while it says so: otherwise
    they answer 404, as a path never mounted does, and the OpenAPI document leaves them out."""

    router: APIRouter
    prefix: str | None = None
    served: Callable[[], Awaitable[bool]] | None = None

    def covers(self, path: str) -> bool:
        """Whether a request path is one of these gated routes'."""
        return self.prefix is not None and (path == self.prefix or path.startswith(self.prefix + "/"))


class CarrierPlugin(Protocol):
    """One carrier, configured for this process."""

    @property
    def kind(self) -> str:
        """The registry key, as stored on a number."""
        ...

    @property
    def text(self) -> TextCarrier:
        """The text port."""
        ...

    def routes(self) -> Sequence[CarrierRoutes]:
        """The routes the carrier posts to, or its own handsets use."""
        ...

    def runners(self) -> Sequence[Runner]:
        """Background work the carrier does itself (the sandbox's reports)."""
        ...

    def line_type_lookup(self) -> LineTypeLookup | None:
        """The carrier's answer to "mobile or landline?", if it has one."""
        ...

    async def close(self) -> None:
        """Finish what is in flight and let go of connections."""
        ...


CarrierFactory = Callable[[CarrierContext], CarrierPlugin | None]
"""Builds a carrier from the context; None when this process is not configured for it."""
