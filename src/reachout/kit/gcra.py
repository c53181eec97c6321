"""The generic cell rate algorithm (GCRA): rate limiting and pacing from one stored number per key.

The state is the theoretical arrival time (TAT): when the key would be idle again had every admitted
request been spaced exactly one emission interval (``per_seconds / count``) apart. A request is admitted if,
after adding its cost, the TAT is at most the burst tolerance ahead of now.

This is a leaky bucket, not a sliding window: it admits at most ``burst`` units at once and then
``count`` per ``per_seconds`` on average. Over any interval of length L it admits at most
``burst + L * count / per_seconds`` units, so with the default ``burst = count`` a window of
``per_seconds`` can see up to twice ``count`` at its edges.

Times are float seconds on whatever axis the caller chooses (monotonic or epoch), as long as it is the
same for every call on a key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """``count`` units per ``per_seconds`` seconds."""

    count: float
    per_seconds: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.count) and self.count > 0):
            raise ValueError(f"rate count must be a positive finite number, got {self.count!r}")
        if not (math.isfinite(self.per_seconds) and self.per_seconds > 0):
            raise ValueError(
                f"rate period must be a positive finite number of seconds, got {self.per_seconds!r}"
            )

    @property
    def emission_interval(self) -> float:
        """Seconds one unit of cost occupies."""
        return self.per_seconds / self.count


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: store ``new_tat``; if refused, try again after ``retry_after`` seconds."""

    allowed: bool
    new_tat: float
    retry_after: float


def decide(
    tat: float | None, now: float, rate: Rate, cost: float = 1.0, burst: float | None = None
) -> Decision:
    """Admit or refuse a request of ``cost`` units at ``now`` given the stored TAT (None if there is none).

    ``burst`` is how many units may be admitted at once (default ``rate.count``); ``cost`` may not exceed it.
    """
    burst = rate.count if burst is None else burst
    _check_finite("now", now)
    if tat is not None:
        _check_finite("tat", tat)
    if not (math.isfinite(cost) and cost >= 0):
        raise ValueError(f"cost must be a non-negative finite number, got {cost!r}")
    if not (math.isfinite(burst) and burst > 0):
        raise ValueError(f"burst must be a positive finite number, got {burst!r}")
    if cost > burst:
        raise ValueError(f"a request costing {cost} can never fit a burst of {burst}")

    interval = rate.emission_interval
    tau = interval * burst
    start = now if tat is None else max(tat, now)
    candidate = start + interval * cost
    # Each stored TAT is a float sum, rounded once per admitted request, and at epoch magnitudes one rounding
    # is ~1e-7 s. Without slack, a full burst could be refused one request early.
    slack = 1e-9 * tau + (burst + 1) * math.ulp(max(abs(now), abs(candidate)))
    if candidate - now <= tau + slack:
        return Decision(allowed=True, new_tat=candidate, retry_after=0.0)
    return Decision(allowed=False, new_tat=now if tat is None else tat, retry_after=candidate - tau - now)


def earliest_start(tat: float | None, now: float, rate: Rate, cost: float = 1.0) -> tuple[float, float]:
    """Pace without bursting: return ``(start, new_tat)`` for a job of ``cost`` units queued at ``now``.

    The job starts when the previous one's time is used up; the next may start ``cost`` intervals later.
    """
    _check_finite("now", now)
    if tat is not None:
        _check_finite("tat", tat)
    if not (math.isfinite(cost) and cost >= 0):
        raise ValueError(f"cost must be a non-negative finite number, got {cost!r}")
    start = now if tat is None else max(tat, now)
    return start, start + rate.emission_interval * cost


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
