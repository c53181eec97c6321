"""Choosing a greeting's sender among its project's numbers: the number asked for, the person's number while
it holds, their latest conversation's, then a stable spread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reachout.routing.selection import (
    STICKY_IDLE_EXPIRY,
    Choice,
    Reason,
    StickyMapping,
    choose_project_sender,
    choose_sender,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PERSON = "+14155551234"
A, B, C = "+14155550100", "+14155550101", "+14155550102"
CANDIDATES = (A, B, C)


def test_the_number_asked_for_wins() -> None:
    sticky = StickyMapping(A, NOW)
    assert choose_project_sender(PERSON, CANDIDATES, sticky, NOW, requested=B) == Choice(B, Reason.REQUESTED)


def test_the_persons_number_wins_over_their_latest_conversation() -> None:
    sticky = StickyMapping(A, NOW - timedelta(days=7))
    assert choose_project_sender(PERSON, CANDIDATES, sticky, NOW, latest=B) == Choice(A, Reason.STICKY)


def test_a_persons_number_that_is_no_candidate_or_idle_for_8_days_gives_way() -> None:
    gone = StickyMapping("+14155550199", NOW)
    idle = StickyMapping(A, NOW - STICKY_IDLE_EXPIRY)
    for sticky in (gone, idle):
        latest = choose_project_sender(PERSON, CANDIDATES, sticky, NOW, latest=B)
        assert latest == Choice(B, Reason.LATEST_CONVERSATION)
        spread = choose_project_sender(PERSON, CANDIDATES, sticky, NOW)
        assert spread == Choice(choose_sender(PERSON, CANDIDATES) or "", Reason.SPREAD)


def test_no_candidates_no_sender() -> None:
    assert choose_project_sender(PERSON, (), StickyMapping(A, NOW), NOW, latest=A) is None


@given(
    candidates=st.lists(st.sampled_from([A, B, C, "+12125550100"]), min_size=1, unique=True),
    sticky=st.one_of(st.none(), st.builds(StickyMapping, st.sampled_from([A, B]), st.just(NOW))),
    latest=st.one_of(st.none(), st.sampled_from([A, C])),
)
def test_the_choice_is_always_a_candidate(
    candidates: list[str], sticky: StickyMapping | None, latest: str | None
) -> None:
    choice = choose_project_sender(PERSON, candidates, sticky, NOW, latest=latest)
    assert choice is not None and choice.sender in candidates
    if sticky is not None and sticky.sender in candidates:
        assert choice == Choice(sticky.sender, Reason.STICKY)
