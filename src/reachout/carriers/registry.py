"""The explicit carrier registry: one factory per carrier kind, and the carriers this process built from them.

Adding a carrier is one folder (its `plugin.build`) and one line in `FACTORIES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reachout.carriers.base import CarrierKind, TextCarrier
from reachout.carriers.plugin import CarrierContext, CarrierFactory, CarrierPlugin, CarrierRoutes
from reachout.carriers.sandbox import plugin as sandbox
from reachout.carriers.twilio import plugin as twilio
from reachout.kit.jobs.runner import Runner
from reachout.phones.lookup import LineTypeLookup

FACTORIES: Mapping[str, CarrierFactory] = {
    CarrierKind.SANDBOX.value: sandbox.build,
    CarrierKind.TWILIO.value: twilio.build,
}


class UnknownCarrier(LookupError):
    """A number names a carrier this process has not configured."""


class CarrierRegistry:
    """The carriers this process can send through, and what each brings."""

    def __init__(self, plugins: Sequence[CarrierPlugin]) -> None:
        self._plugins = {str(plugin.kind): plugin for plugin in plugins}

    @classmethod
    def build(
        cls, context: CarrierContext, factories: Mapping[str, CarrierFactory] = FACTORIES
    ) -> CarrierRegistry:
        """Every carrier the context configures (one left unconfigured is simply absent)."""
        built = (factory(context) for factory in factories.values())
        return cls([plugin for plugin in built if plugin is not None])

    @classmethod
    def of_texts(cls, texts: Mapping[str, TextCarrier]) -> CarrierRegistry:
        """A registry of bare text ports, with no routes, runners or lookups (a dispatcher's alone)."""
        return cls([_TextOnly(kind, text) for kind, text in texts.items()])

    def kinds(self) -> list[str]:
        """The kinds of carrier configured, as numbers name them."""
        return sorted(self._plugins)

    def get(self, kind: str) -> TextCarrier:
        """The text port of the carrier a number is stored with."""
        plugin = self._plugins.get(kind)
        if plugin is None:
            raise UnknownCarrier(f"carrier '{kind}' is not configured")
        return plugin.text

    def plugin(self, kind: str) -> CarrierPlugin | None:
        """The carrier of this kind, if configured."""
        return self._plugins.get(kind)

    def routes(self) -> list[CarrierRoutes]:
        """Every carrier's HTTP routes."""
        return [routes for plugin in self._plugins.values() for routes in plugin.routes()]

    def runners(self) -> list[Runner]:
        """Every carrier's background runners."""
        return [runner for plugin in self._plugins.values() for runner in plugin.runners()]

    def line_type_lookup(self, kind: str) -> LineTypeLookup:
        """The line-type lookup of a configured carrier that has one."""
        plugin = self._plugins.get(kind)
        lookup = None if plugin is None else plugin.line_type_lookup()
        if lookup is None:
            raise UnknownCarrier(f"the line-type lookup of carrier '{kind}' needs that carrier configured")
        return lookup

    async def close(self) -> None:
        """Close every carrier, each even if another fails."""
        for plugin in self._plugins.values():
            await plugin.close()


@dataclass(frozen=True)
class _TextOnly:
    """A text port standing alone as a carrier."""

    kind: str
    text: TextCarrier

    def routes(self) -> Sequence[CarrierRoutes]:
        return ()

    def runners(self) -> Sequence[Runner]:
        return ()

    def line_type_lookup(self) -> LineTypeLookup | None:
        return None

    async def close(self) -> None:
        return None
