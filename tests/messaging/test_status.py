import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.delivery.status import (
    TERMINAL_STATUSES,
    MessageStatus,
    TransitionOutcome,
    decide,
    is_terminal,
)

S = MessageStatus
A, D, X = TransitionOutcome.APPLIED, TransitionOutcome.DUPLICATE, TransitionOutcome.STALE

COLUMNS = [S.QUEUED, S.SENDING, S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.RECEIVED, S.READ, S.CANCELED]
# Every (current, reported) pair, written out. Rows: current; columns: reported, in COLUMNS order.
TABLE = {
    #                 queued sending sent delivered undelivered failed received read canceled
    S.QUEUED:      [D, A, A, A, A, A, A, A, A],
    S.SENDING:     [X, D, A, A, A, A, A, A, A],
    S.SENT:        [X, X, D, A, A, A, A, A, A],
    S.DELIVERED:   [X, X, X, D, X, X, X, A, X],
    S.UNDELIVERED: [X, X, X, X, D, X, X, X, X],
    S.FAILED:      [X, X, X, X, X, D, X, X, X],
    S.RECEIVED:    [X, X, X, X, X, X, D, X, X],
    S.READ:        [X, X, X, X, X, X, X, D, X],
    S.CANCELED:    [X, X, X, X, X, X, X, X, D],
}  # fmt: skip

# The spec's ranks, restated here so the properties do not lean on the module's own table.
RANK = {
    S.QUEUED: 0,
    S.SENDING: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.UNDELIVERED: 3,
    S.FAILED: 3,
    S.CANCELED: 3,
    S.RECEIVED: 3,
    S.READ: 4,
}

statuses = st.sampled_from(list(MessageStatus))
sequences = st.lists(statuses, max_size=20)


def fold(start: MessageStatus, reported: list[MessageStatus]) -> MessageStatus:
    current = start
    for status in reported:
        if decide(current, status) is TransitionOutcome.APPLIED:
            current = status
    return current


def test_the_table_covers_every_status() -> None:
    assert set(COLUMNS) == set(MessageStatus) == set(TABLE) == set(RANK)
    assert len(COLUMNS) == len(MessageStatus)


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        (current, reported, outcome)
        for current, row in TABLE.items()
        for reported, outcome in zip(COLUMNS, row, strict=True)
    ],
)
def test_every_transition(
    current: MessageStatus, reported: MessageStatus, expected: TransitionOutcome
) -> None:
    assert decide(current, reported) is expected


def test_values_are_lower_case_names() -> None:
    assert [s.value for s in MessageStatus] == [
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "received",
        "read",
        "canceled",
    ]
    assert MessageStatus("delivered") is S.DELIVERED
    assert [o.value for o in TransitionOutcome] == ["applied", "duplicate", "stale"]


def test_terminal_statuses() -> None:
    assert (
        frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED, S.RECEIVED, S.READ, S.CANCELED}) == TERMINAL_STATUSES
    )
    assert [s for s in MessageStatus if not is_terminal(s)] == [S.QUEUED, S.SENDING, S.SENT]


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        (S.QUEUED, S.DELIVERED, A),  # the delivery receipt overtook the "sent" callback
        (S.SENT, S.SENDING, X),
        (S.DELIVERED, S.SENT, X),
        (S.FAILED, S.DELIVERED, X),
        (S.SENT, S.READ, A),
        (S.DELIVERED, S.READ, A),  # WhatsApp read receipt
        (S.READ, S.DELIVERED, X),
    ],
)
def test_named_cases(current: MessageStatus, reported: MessageStatus, expected: TransitionOutcome) -> None:
    assert decide(current, reported) is expected


@given(statuses, statuses)
def test_duplicate_exactly_when_equal(current: MessageStatus, reported: MessageStatus) -> None:
    assert (decide(current, reported) is D) == (current == reported)


@given(statuses, sequences)
def test_status_only_moves_forward_and_never_leaves_a_terminal(
    start: MessageStatus, reported: list[MessageStatus]
) -> None:
    current = start
    for status in reported:
        if decide(current, status) is not A:
            continue
        assert RANK[status] > RANK[current]
        if is_terminal(current):
            assert (current, status) == (S.DELIVERED, S.READ)
        current = status


@given(statuses, sequences)
def test_the_final_status_is_one_that_was_seen(start: MessageStatus, reported: list[MessageStatus]) -> None:
    final = fold(start, reported)
    assert final == start or final in reported
    if any(is_terminal(s) for s in [start, *reported]):
        assert is_terminal(final)


@given(statuses, sequences)
def test_replaying_callbacks_changes_nothing(start: MessageStatus, reported: list[MessageStatus]) -> None:
    final = fold(start, reported)
    assert all(decide(final, status) is not A for status in reported)


@given(statuses, sequences, st.data())
def test_order_does_not_matter_unless_terminals_conflict(
    start: MessageStatus, reported: list[MessageStatus], data: st.DataObject
) -> None:
    # With two different terminal outcomes (say failed and delivered) the first to arrive wins, by design.
    # Otherwise the outcome cannot depend on the order callbacks arrive in.
    terminals = {s for s in reported if is_terminal(s)}
    conflicting = len(terminals) > 1 and terminals != {S.DELIVERED, S.READ}
    shuffled = data.draw(st.permutations(reported))
    if is_terminal(start) or not conflicting:
        assert fold(start, shuffled) == fold(start, reported)
