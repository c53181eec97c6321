"""What an attempt's answer means (pure): success, another try later (how soon it may be), or a refusal for
good. Only a 2xx succeeds; a redirect is not followed, so a 3xx fails like any other answer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

RESPONSE_BODY_KEPT = 2048  # bytes of an answer kept with its attempt, for whoever debugs the endpoint
_ASKS_TO_WAIT = frozenset({429, 503})  # the statuses whose Retry-After is honoured
GONE = 410


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # try again on the schedule
    GONE = "gone"  # the endpoint said it no longer exists: disable it


class Judgement(NamedTuple):
    verdict: Verdict
    error: str | None = None  # what went wrong, for the attempt's record
    honours_retry_after: bool = False


def judge(status_code: int | None, failure: str | None) -> Judgement:
    """The verdict on an attempt that got `status_code` (None: no answer, for the reason `failure` gives)."""
    if status_code is None:
        return Judgement(Verdict.RETRY, failure or "no answer")
    if 200 <= status_code < 300:
        return Judgement(Verdict.SUCCEEDED)
    if status_code == GONE:
        return Judgement(Verdict.GONE, "410 Gone: the endpoint asked to be sent nothing more")
    if 300 <= status_code < 400:
        return Judgement(Verdict.RETRY, f"{status_code}: redirects are not followed")
    return Judgement(Verdict.RETRY, f"{status_code}", honours_retry_after=status_code in _ASKS_TO_WAIT)


class Health(NamedTuple):
    """An endpoint's standing: since when every attempt has failed (None: the last one succeeded), and why
    it is to be disabled (None: it is not)."""

    failing_since: datetime | None
    disable: str | None = None


def health_after(
    standing: Health, attempts: Iterable[tuple[datetime, Verdict]], disable_after_seconds: float
) -> Health:
    """An endpoint's standing after these attempts (in the order they were made)."""
    failing_since, disable = standing
    for at, verdict in sorted(attempts, key=lambda attempt: attempt[0]):
        if verdict is Verdict.SUCCEEDED:
            failing_since = None
            continue
        failing_since = failing_since or at
        if verdict is Verdict.GONE:
            disable = disable or "the endpoint answered 410 Gone"
        elif (at - failing_since).total_seconds() >= disable_after_seconds:
            days = disable_after_seconds / 86_400
            disable = disable or f"every attempt failed for {days:g} days"
    return Health(failing_since, disable)
