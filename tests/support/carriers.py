"""Carriers added to a test's reachout through the registry alone."""

from __future__ import annotations

from sqlalchemy import update

from reachout.carriers.plugin import CarrierContext
from reachout.carriers.sandbox.plugin import SandboxPlugin
from reachout.phones.lookup import LineFacts, LineTypeLookup, LookupUnavailable
from reachout.phones.numbers import PhoneNumber as Number
from reachout.tenancy.models import PhoneNumber
from tests.support.service import Service


class LookupDown:
    """A line-type lookup that cannot answer: the send gates send unchecked, so the carrier decides."""

    name = "down"

    async def look_up(self, number: Number) -> LineFacts:
        raise LookupUnavailable("down for the test")

    async def close(self) -> None:
        """Nothing to release."""


class SandboxWithoutLookup(SandboxPlugin):
    """The sandbox, its lookup out of service (as a real lookup may be), so its refusals reach the carrier."""

    def line_type_lookup(self) -> LineTypeLookup | None:
        return LookupDown()


def sandbox_without_lookup(context: CarrierContext) -> SandboxPlugin:
    """A carrier factory for the registry: the sandbox without its lookup."""
    return SandboxWithoutLookup(context)


async def move_number(service: Service, number: str, carrier: str) -> None:
    """Send from `number` through `carrier` from now on (a carrier kind the provisioning file cannot name)."""
    async with service.runtime.database.write.begin() as session:
        await session.execute(update(PhoneNumber).where(PhoneNumber.number == number).values(carrier=carrier))
    service.runtime.directory.forget()
