"""A runner: one kind of background work, which the worker drives in a loop of its own."""

from __future__ import annotations

from typing import Protocol


class Runner(Protocol):
    """Claims and works one batch per pass, with its own batch size and concurrency (set when it is built).

    The worker runs each runner in its own loop, so none waits behind another: a conversation turn never sits
    behind a batch of paced sends.
    """

    name: str
    batch_size: int  # the most one pass takes; a pass that took fewer found the queue drained

    async def run_once(self) -> int:
        """One pass; returns how many items it found due (zero: it may sleep until woken or polled)."""
        ...
