"""The explicit carrier registry: one entry per `CarrierKind`, built once at start-up."""

from __future__ import annotations

from collections.abc import Mapping

from reachout.carriers.base import Carrier, CarrierKind


class UnknownCarrier(LookupError):
    """A number names a carrier this process has not configured."""


class CarrierRegistry:
    """The carriers this process can send through."""

    def __init__(self, carriers: Mapping[CarrierKind, Carrier]) -> None:
        self._carriers = dict(carriers)

    def get(self, kind: str) -> Carrier:
        """The carrier for a kind, as stored on a phone number."""
        try:
            return self._carriers[CarrierKind(kind)]
        except (ValueError, KeyError):
            raise UnknownCarrier(f"carrier '{kind}' is not configured") from None
