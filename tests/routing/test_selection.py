"""Choosing a use case's sender: sticky first, then area code, overlay, country, anyone; least loaded wins,
but for a person whose number the pool lacks, one stand-in whatever the load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.phones.numbers import parse_e164
from reachout.routing.selection import (
    Choice,
    Policy,
    PoolSender,
    Reason,
    StickyMapping,
    choose_pool_sender,
    refreshed,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SF, SF_OTHER, NYC_212, NYC_646, TORONTO = (
    "+14155550100",
    "+14155550199",
    "+12125550100",
    "+16465550100",
    "+14165550100",
)
RECIPIENT_415 = parse_e164("+14155551234")


def pool(*numbers: str, loads: dict[str, int] | None = None) -> list[PoolSender]:
    return [PoolSender(parse_e164(n), (loads or {}).get(n, 0)) for n in numbers]


def choose(
    recipient: str,
    senders: list[PoolSender],
    policy: Policy | None = None,
    sticky: StickyMapping | None = None,
) -> Choice | None:
    return choose_pool_sender(parse_e164(recipient), senders, policy or Policy(), sticky, NOW)


def test_geomatch_prefers_the_recipients_area_code() -> None:
    assert choose(RECIPIENT_415.e164, pool(NYC_212, SF, NYC_646)) == Choice(SF, Reason.AREA_CODE)


def test_an_overlay_area_code_of_the_same_place_comes_next() -> None:
    assert choose("+12125551234", pool(SF, NYC_646)) == Choice(NYC_646, Reason.OVERLAY)


def test_then_a_number_of_the_same_country() -> None:
    assert choose(RECIPIENT_415.e164, pool(NYC_212, TORONTO)) == Choice(NYC_212, Reason.COUNTRY)


def test_then_any_number_that_can_reach_the_recipient() -> None:
    assert choose("+14165551234", pool(SF, NYC_212), Policy(area_code_geomatch=False)).reason is Reason.ANY
    unreachable = [PoolSender(parse_e164(SF), reaches=frozenset({"US"}))]
    assert choose("+14165551234", unreachable) is None


def test_without_geomatch_the_country_tier_decides() -> None:
    assert (
        choose(RECIPIENT_415.e164, pool(NYC_212, SF), Policy(area_code_geomatch=False)).reason
        is Reason.COUNTRY
    )


def test_within_a_tier_the_least_loaded_number_wins() -> None:
    loads = {SF: 40, SF_OTHER: 3}
    assert choose(RECIPIENT_415.e164, pool(SF, SF_OTHER, loads=loads)) == Choice(SF_OTHER, Reason.AREA_CODE)
    assert choose(RECIPIENT_415.e164, pool(SF, SF_OTHER, loads={SF: 1, SF_OTHER: 9})) == Choice(
        SF, Reason.AREA_CODE
    )


@pytest.mark.parametrize(
    ("idle", "expected"),
    [
        (timedelta(days=7, hours=23, minutes=59), Choice(NYC_212, Reason.STICKY)),
        (timedelta(days=8), Choice(SF, Reason.AREA_CODE)),
    ],
)
def test_a_sticky_sender_holds_until_the_mapping_is_8_days_idle(idle: timedelta, expected: Choice) -> None:
    sticky = StickyMapping(NYC_212, NOW - idle)
    assert choose(RECIPIENT_415.e164, pool(SF, NYC_212), sticky=sticky) == expected


def test_a_sticky_sender_no_longer_in_the_pool_or_with_stickiness_off_is_ignored() -> None:
    sticky = StickyMapping(NYC_646, NOW)
    assert choose(RECIPIENT_415.e164, pool(SF, NYC_212), sticky=sticky) == Choice(SF, Reason.AREA_CODE)
    off = Policy(sticky_sender=False)
    assert choose(RECIPIENT_415.e164, pool(SF, NYC_646), off, sticky) == Choice(SF, Reason.AREA_CODE)


def test_a_sticky_pool_that_lacks_the_persons_number_stands_in_with_one_number_whatever_the_load() -> None:
    elsewhere = StickyMapping(NYC_646, NOW)
    loads = [{SF: 40, SF_OTHER: 3}, {SF: 1, SF_OTHER: 9}, {}]
    picks = {choose(RECIPIENT_415.e164, pool(SF, SF_OTHER, loads=load), sticky=elsewhere) for load in loads}
    assert len(picks) == 1 and {c.reason for c in picks if c is not None} == {Reason.AREA_CODE}
    idle = StickyMapping(NYC_646, NOW - timedelta(days=8))  # no number of theirs: the load decides again
    assert {
        choose(RECIPIENT_415.e164, pool(SF, SF_OTHER, loads=load), sticky=idle) for load in loads[:2]
    } == {
        Choice(SF_OTHER, Reason.AREA_CODE),
        Choice(SF, Reason.AREA_CODE),
    }


US_NUMBERS = st.sampled_from(
    [SF, SF_OTHER, NYC_212, NYC_646, "+13125550100", "+16175550100", "+12065550100", "+16285550100"]
)
ANY_NUMBERS = st.one_of(US_NUMBERS, st.sampled_from([TORONTO, "+447911123456", "+33612345678"]))


@given(
    recipient=ANY_NUMBERS,
    senders=st.lists(
        st.tuples(
            ANY_NUMBERS, st.integers(0, 50), st.sampled_from([None, frozenset({"US"}), frozenset({"CA"})])
        ),
        max_size=8,
        unique_by=lambda t: t[0],
    ),
    policy=st.builds(Policy, st.booleans(), st.booleans()),
    sticky=st.one_of(st.none(), st.builds(StickyMapping, ANY_NUMBERS, st.just(NOW - timedelta(days=1)))),
)
def test_the_chosen_sender_is_always_in_the_pool_and_can_reach_the_recipient(
    recipient: str,
    senders: list[tuple[str, int, frozenset[str] | None]],
    policy: Policy,
    sticky: StickyMapping | None,
) -> None:
    pool_ = [PoolSender(parse_e164(n), load, reaches) for n, load, reaches in senders]
    target = parse_e164(recipient)
    able = {s.number.e164 for s in pool_ if s.reaches is None or target.region in s.reaches}
    choice = choose_pool_sender(target, pool_, policy, sticky, NOW)
    if not able:
        assert choice is None
        return
    assert choice is not None and choice.sender in able
    if policy.sticky_sender and sticky is not None and sticky.sender in able:
        assert choice == Choice(sticky.sender, Reason.STICKY)
    elif choice.reason is Reason.AREA_CODE:
        assert parse_e164(choice.sender).area_code == target.area_code
    if policy.sticky_sender and sticky is not None and sticky.sender not in able:
        unloaded = [PoolSender(s.number, 0, s.reaches) for s in pool_]
        assert choice == choose_pool_sender(target, unloaded, policy, sticky, NOW)  # one stand-in


def test_a_mapping_used_within_the_hour_is_kept_as_it_is_and_refreshed_after() -> None:
    used = StickyMapping("+14155550100", NOW)
    assert refreshed(used, "+14155550100", NOW + timedelta(minutes=59)) is used
    assert refreshed(used, "+14155550100", NOW + timedelta(hours=1)) == StickyMapping(
        "+14155550100", NOW + timedelta(hours=1)
    )
    assert refreshed(used, "+14155550101", NOW + timedelta(minutes=1)) == StickyMapping(
        "+14155550101", NOW + timedelta(minutes=1)
    )
    assert refreshed(None, "+14155550100", NOW) == StickyMapping("+14155550100", NOW)
