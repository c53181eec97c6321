"""Carriers added to a test's reachout through the registry alone."""

from __future__ import annotations

from sqlalchemy import update

from reachout.tenancy.models import PhoneNumber
from tests.support.service import Service


async def move_number(service: Service, number: str, carrier: str) -> None:
    """Send from `number` through `carrier` from now on (a carrier kind the provisioning file cannot name)."""
    async with service.runtime.database.write.begin() as session:
        await session.execute(update(PhoneNumber).where(PhoneNumber.number == number).values(carrier=carrier))
    service.runtime.directory.forget()
