"""Choosing the sender for a recipient (pure).

A person has one number in a project, whichever dialect sends to them: the sticky mapping, the number their
first messages go from, held while it has been used in the last 8 days. Two ways in.
`choose_project_sender` serves a project's numbers (a greeting): the number asked for, else the person's
number while it is a candidate, else their latest conversation's, else a stable spread by rendezvous hashing,
so first contacts spread evenly and a choice moves only if its number goes away. `choose_pool_sender` serves
an SMS use case's pool with its routing policies, tier by tier: the person's number (while it is in the pool,
if the use case is sticky), then a number with the recipient's area code, then one of the same place (an
overlay area code), then one of the same country, then any number that can reach the recipient; within a
tier the least-loaded number wins, but a person whose number the pool lacks gets the same stand-in every time
(rendezvous hashing), since the mapping stays on their own number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, TypeGuard

from reachout.phones.numbers import PhoneNumber

STICKY_IDLE_EXPIRY: Final = timedelta(days=8)
# A mapping used within this long is not rewritten by another send from the same number: a person texted
# every few minutes costs no write each time, and their 8 days run from at most this long before their last.
STICKY_REFRESH: Final = timedelta(hours=1)


def _weight(recipient: str, sender: str) -> bytes:
    return hashlib.blake2b(f"{recipient}|{sender}".encode(), digest_size=8).digest()


def choose_sender(recipient: str, candidates: Sequence[str], previous: str | None = None) -> str | None:
    """The sender for `recipient`: `previous` while it is still a candidate, else its rendezvous favourite."""
    if not candidates:
        return None
    if previous is not None and previous in candidates:
        return previous
    return max(candidates, key=lambda sender: _weight(recipient, sender))


class Reason(StrEnum):
    """Why a sender was chosen: the tier it won in."""

    REQUESTED = "requested"  # the greeting named its number
    STICKY = "sticky"
    LATEST_CONVERSATION = "latest_conversation"
    SPREAD = "spread"  # a project's first contact, by rendezvous hashing
    AREA_CODE = "area_code"
    OVERLAY = "overlay"
    COUNTRY = "country"
    ANY = "any"


@dataclass(frozen=True)
class PoolSender:
    """A number of a use case's pool: `load` is its recent traffic, `reaches` the regions it may send to
    (None: anywhere the use case allows)."""

    number: PhoneNumber
    load: int = 0
    reaches: frozenset[str] | None = None


@dataclass(frozen=True)
class Policy:
    sticky_sender: bool = True
    area_code_geomatch: bool = True


@dataclass(frozen=True)
class StickyMapping:
    """A person's number in a project (the one their first messages go from), and when it was last used."""

    sender: str
    last_used: datetime


def holds(sticky: StickyMapping | None, now: datetime) -> TypeGuard[StickyMapping]:
    """Whether a mapping still binds: used within the last 8 days."""
    return sticky is not None and now - sticky.last_used < STICKY_IDLE_EXPIRY


def refreshed(sticky: StickyMapping | None, sender: str, now: datetime) -> StickyMapping:
    """The person's mapping after a send from `sender` makes it theirs (see STICKY_REFRESH)."""
    if sticky is not None and sticky.sender == sender and now - sticky.last_used < STICKY_REFRESH:
        return sticky
    return StickyMapping(sender, now)


@dataclass(frozen=True)
class Choice:
    sender: str
    reason: Reason


def choose_project_sender(
    recipient: str,
    candidates: Sequence[str],
    sticky: StickyMapping | None,
    now: datetime,
    *,
    requested: str | None = None,
    latest: str | None = None,
) -> Choice | None:
    """A greeting's sender among its project's `candidates`, and why; None when there are none."""
    if requested is not None:
        return Choice(requested, Reason.REQUESTED)
    if not candidates:
        return None
    if holds(sticky, now) and sticky.sender in candidates:
        return Choice(sticky.sender, Reason.STICKY)
    if latest is not None and latest in candidates:
        return Choice(latest, Reason.LATEST_CONVERSATION)
    favourite = choose_sender(recipient, candidates)
    assert favourite is not None  # there are candidates
    return Choice(favourite, Reason.SPREAD)


def choose_pool_sender(
    recipient: PhoneNumber,
    pool: Sequence[PoolSender],
    policy: Policy,
    sticky: StickyMapping | None,
    now: datetime,
) -> Choice | None:
    """The pool's sender for `recipient`, and why; None when no number of the pool can reach them."""
    able = [s for s in pool if s.reaches is None or recipient.region in s.reaches]
    if not able:
        return None
    kept = sticky if policy.sticky_sender and holds(sticky, now) else None
    if kept is not None and any(s.number.e164 == kept.sender for s in able):
        return Choice(kept.sender, Reason.STICKY)
    tiers: list[tuple[Reason, list[PoolSender]]] = []
    if policy.area_code_geomatch and recipient.region is not None:
        same_country = [s for s in able if s.number.region == recipient.region]
        tiers.append(
            (Reason.AREA_CODE, [s for s in same_country if s.number.area_code == recipient.area_code])
        )
        if recipient.place is not None:
            tiers.append((Reason.OVERLAY, [s for s in same_country if s.number.place == recipient.place]))
    if recipient.region is not None:
        tiers.append((Reason.COUNTRY, [s for s in able if s.number.region == recipient.region]))
    tiers.append((Reason.ANY, able))
    # A sticky pool that lacks the person's number stands in for it with the same number every time: the
    # mapping stays on their number, so nothing records the stand-in, and following the load would move it.
    by_load = kept is None
    for reason, senders in tiers:
        if senders:
            best = min(
                senders, key=lambda s: (s.load if by_load else 0, _weight(recipient.e164, s.number.e164))
            )
            return Choice(best.number.e164, reason)
    return None  # unreachable: the last tier is every able sender
