"""Pacing (pure): slots never overlap on a line, a busy line defers, a reply overtakes, stale ones expire."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from reachout.routing.pacing import Due, Line, lines_for, plan

NOW = 1_800_000_000.0
SENDER = "+14155550100"
OTHER = "+14155550101"


def one_mps(number: str = SENDER) -> tuple[Line, ...]:
    return lines_for(number, 1.0)


def test_unpaced_messages_all_go_now_and_touch_no_line() -> None:
    result = plan([Due(f"m{i}", 1, ()) for i in range(3)], {}, NOW, horizon=0.5)
    assert [(s.id, s.at) for s in result.slots] == [("m0", NOW), ("m1", NOW), ("m2", NOW)]
    assert result.deferred == () and result.arrivals == {}


def test_a_one_mps_sender_sends_one_now_and_defers_the_rest_to_their_turns() -> None:
    result = plan([Due(f"m{i}", 1, one_mps()) for i in range(3)], {}, NOW, horizon=0.5)
    assert [(s.id, s.at) for s in result.slots] == [("m0", NOW)]
    assert [(s.id, s.at) for s in result.deferred] == [("m1", NOW + 0.5), ("m2", NOW + 1.5)]
    assert result.arrivals == {f"number:{SENDER}": NOW + 1}, "only what was slotted is reserved"


def test_a_slot_within_the_horizon_is_taken_at_the_lines_arrival_time() -> None:
    key = f"number:{SENDER}"
    result = plan([Due("m", 1, one_mps())], {key: NOW + 0.4}, NOW, horizon=0.5)
    assert [(s.id, s.at) for s in result.slots] == [("m", NOW + 0.4)]
    assert result.arrivals == {key: NOW + 1.4}


def test_a_three_segment_message_holds_the_line_three_times_as_long() -> None:
    result = plan([Due("long", 3, one_mps()), Due("short", 1, one_mps())], {}, NOW, horizon=0.5)
    assert [(s.id, s.at) for s in result.slots] == [("long", NOW)]
    assert [(s.id, s.at) for s in result.deferred] == [("short", NOW + 2.5)]
    assert result.arrivals == {f"number:{SENDER}": NOW + 3}


def test_a_brand_cap_spaces_messages_from_different_numbers_of_the_brand() -> None:
    a = lines_for(SENDER, 10.0, "acme/health", 1.0)
    b = lines_for(OTHER, 10.0, "acme/health", 1.0)
    result = plan([Due("a", 1, a), Due("b", 1, b)], {}, NOW, horizon=0.5)
    assert [(s.id, s.at) for s in result.slots] == [("a", NOW)]
    assert [(s.id, s.at) for s in result.deferred] == [("b", NOW + 0.5)]
    assert result.arrivals == {f"number:{SENDER}": NOW + 0.1, "brand:acme/health": NOW + 1}


def test_a_brand_without_a_cap_and_an_unlimited_number_add_no_lines() -> None:
    assert lines_for(SENDER, None, "acme/health", None) == ()


def test_messages_past_their_validity_expire_and_deferrals_stop_at_expiry() -> None:
    result = plan(
        [
            Due("stale", 1, one_mps(), expires_at=NOW),
            Due("a", 1, one_mps()),
            Due("b", 1, one_mps(), NOW + 0.3),
        ],
        {},
        NOW,
        horizon=0.5,
    )
    assert result.expired == ("stale",), "an expired message takes no slot"
    assert [(s.id, s.at) for s in result.slots] == [("a", NOW)]
    assert [(s.id, s.at) for s in result.deferred] == [("b", NOW + 0.3)]


@dataclass
class Queued:
    id: str
    line: str
    cost: int
    priority: int
    due_at: float


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.integers(1, 3),
            st.integers(0, 1),
            st.floats(0, 5, allow_nan=False),
        ),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from([0.05, 0.1, 0.2]),
    st.integers(1, 10),
)
def test_passes_of_several_workers_never_overlap_a_lines_slots(
    messages: list[tuple[str, int, int, float]], poll: float, batch: int
) -> None:
    """Dispatcher passes over time, batch by batch: every message gets a slot, and no line is overbooked."""
    rates = {"A": 1.0, "B": 3.0, "C": 0.5}
    queue = [
        Queued(f"m{i}", line, cost, priority, NOW + arrival)
        for i, (line, cost, priority, arrival) in enumerate(messages)
    ]
    arrivals: dict[str, float] = {}
    sent: list[tuple[float, Queued]] = []
    now = NOW
    while queue:
        due = sorted((q for q in queue if q.due_at <= now), key=lambda q: (q.priority, q.due_at, q.id))
        for chunk_start in range(0, len(due), batch):  # several workers, one batch each, one after another
            chunk = due[chunk_start : chunk_start + batch]
            result = plan(
                [Due(q.id, q.cost, lines_for(q.line, rates[q.line])) for q in chunk], arrivals, now, 0.5
            )
            arrivals.update(result.arrivals)
            by_id = {q.id: q for q in chunk}
            for slot in result.slots:
                assert now <= slot.at <= now + 0.5
                sent.append((slot.at, by_id[slot.id]))
                queue.remove(by_id[slot.id])
            for deferral in result.deferred:
                assert deferral.at > now
                by_id[deferral.id].due_at = deferral.at
        now += poll
        assert now < NOW + 5 + 3 * 25 * 2 + 1, "every message is sent in bounded time"

    for line, rate in rates.items():
        slots = sorted((at, q.cost) for at, q in sent if q.line == line)
        for (start, cost), (next_start, _) in itertools.pairwise(slots):
            assert next_start >= start + cost / rate - 1e-6, f"line {line} overbooked"


def test_a_reply_due_now_goes_before_first_messages_waiting_on_the_same_sender() -> None:
    # The dispatcher hands replies over first (lower priority value); pacing keeps the order it is given.
    key = f"number:{SENDER}"
    result = plan([Due("reply", 1, one_mps()), Due("first", 1, one_mps())], {key: NOW + 0.2}, NOW, 0.5)
    assert [(s.id, s.at) for s in result.slots] == [("reply", NOW + 0.2)]
    assert [(s.id, s.at) for s in result.deferred] == [("first", NOW + 0.7)]


def test_a_paced_slot_leaves_the_claim_time_to_commit_and_an_unpaced_one_does_not() -> None:
    result = plan([Due("paced", 1, one_mps()), Due("free", 1, ())], {}, NOW, horizon=0.5, lead=0.05)
    assert [(s.id, s.at) for s in result.slots] == [("paced", NOW + 0.05), ("free", NOW)]
    assert result.arrivals == {f"number:{SENDER}": NOW + 1.05}
