"""The sandbox as a carrier plugin: its text port, its handsets' routes (served where the rule says), and the
runner that makes its delayed status reports."""

from __future__ import annotations

from collections.abc import Sequence

from reachout.carriers.base import CarrierEvents, CarrierKind
from reachout.carriers.plugin import CarrierContext, CarrierRoutes
from reachout.carriers.sandbox.carrier import SandboxCarrier
from reachout.carriers.sandbox.routes import PREFIX, SandboxExposure, sandbox_router
from reachout.carriers.sandbox.rules import SandboxLookup
from reachout.db.engine import Database
from reachout.kit.jobs.runner import Runner
from reachout.phones.lookup import LineTypeLookup

REPORT_BATCH = 500


class SandboxReports:
    """A worker runner: the sandbox's `sent` and final reports that are due, down the shared status path."""

    name = "sandbox-reports"
    batch_size = REPORT_BATCH

    def __init__(self, database: Database, carrier: SandboxCarrier, events: CarrierEvents) -> None:
        self._database = database
        self._carrier = carrier
        self._events = events

    async def run_once(self) -> int:
        """Make the due reports, in one transaction with the statuses they apply."""
        async with self._database.write.begin() as session:
            reports = await self._carrier.take_due_reports(session, REPORT_BATCH)
            await self._events.statuses(session, reports)
        return len(reports)


class SandboxPlugin:
    """The sandbox carrier as this process runs it."""

    kind = CarrierKind.SANDBOX

    def __init__(self, context: CarrierContext) -> None:
        settings = context.settings
        self.text = SandboxCarrier(
            context.database.write,
            context.clock,
            sent_after=settings.sandbox_sent_after_seconds,
            delivered_after=settings.sandbox_delivered_after_seconds,
            without_receipts=settings.sandbox_routes_without_receipts,
        )
        self._context = context
        self._exposure = SandboxExposure(settings.sandbox_routes, context.numbers.carrier_in_use)

    def routes(self) -> Sequence[CarrierRoutes]:
        context = self._context
        router = sandbox_router(context.database, self.text, context.events, context.numbers)
        return (CarrierRoutes(router, PREFIX, self._exposure.served),)

    def runners(self) -> Sequence[Runner]:
        return (SandboxReports(self._context.database, self.text, self._context.events),)

    def line_type_lookup(self) -> LineTypeLookup | None:
        return SandboxLookup()

    async def close(self) -> None:
        await self.text.close()


def build(context: CarrierContext) -> SandboxPlugin:
    """The sandbox is always there: it is the embedded default."""
    return SandboxPlugin(context)
