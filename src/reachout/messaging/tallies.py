"""What messaging counts: accepts, hand-offs, deliveries, failures, retries; once their transaction commits.

Each function here runs after the commit (`kit.after_commit`), outside any write lock, and adds one
increment per label set of its batch. Labels are bounded: projects, carriers and senders as provisioned, and
error codes from the failure catalogue (any other code is `other`); never a recipient or a message id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from reachout.delivery.failures import CATALOGUE
from reachout.kit import metrics
from reachout.kit.metrics import NO_LABEL
from reachout.messaging.schemas import MessageChange, MessageEvent, MessageState, NewOutbound, SendOutcome


def error_code_label(code: int | None) -> str:
    """A failure's code as a label: the catalogue's codes, `other` for any other, `none` for no code."""
    if code is None:
        return NO_LABEL
    return str(code) if code in CATALOGUE else "other"


def count_accepted(messages: Sequence[NewOutbound]) -> None:
    """First messages a batch accepted, by project and channel."""
    accepted: Counter[tuple[str, ...]] = Counter((m.text.project_id, str(m.text.channel)) for m in messages)
    metrics.count(metrics.instruments().accepted, accepted)


def count_changes(changes: Mapping[str, MessageChange], states: Mapping[str, MessageState]) -> None:
    """What a batch of status reports moved: hand-offs (and their segments), deliveries, failures."""
    made = metrics.instruments()
    handed_off: Counter[tuple[str, ...]] = Counter()
    delivered: Counter[tuple[str, ...]] = Counter()
    failed: Counter[tuple[str, ...]] = Counter()
    segments: Counter[tuple[str, ...]] = Counter()
    waits: dict[str, list[float]] = {}  # by carrier: one label lookup per carrier, not per message
    for message_id, change in changes.items():
        state = states.get(message_id)
        if state is None:
            continue
        project = state.project_id or NO_LABEL
        carrier = change.carrier or state.carrier or NO_LABEL
        handed_off_at = change.handed_off_at or state.handed_off_at
        if change.handed_off_at is not None:
            handed_off[project, carrier] += 1
            sender = change.from_number or state.from_number
            if sender is not None:
                segments[project, sender] += change.num_segments or state.num_segments
        if change.delivered_at is not None:
            delivered[project, carrier] += 1
            if handed_off_at is not None:
                waited = (change.delivered_at - handed_off_at).total_seconds()
                waits.setdefault(carrier, []).append(max(waited, 0.0))
        if change.errored_at is not None:
            status = NO_LABEL if change.status is None else str(change.status)
            failed[project, carrier, status, error_code_label(change.error_code)] += 1
    metrics.count(made.handed_off, handed_off)
    metrics.count(made.sender_segments, segments)
    metrics.count(made.delivered, delivered)
    metrics.count(made.failed, failed)
    for carrier, seconds in waits.items():
        histogram = made.send_to_delivered_seconds.labels(carrier)
        for waited in seconds:
            histogram.observe(waited)


def count_retries(retried: Sequence[MessageEvent], outcomes: Sequence[SendOutcome]) -> None:
    """Hand-offs that failed and will be tried again, by project, carrier and error code."""
    if not retried:
        return
    by_id = {outcome.message.id: outcome for outcome in outcomes}
    retries: Counter[tuple[str, ...]] = Counter()
    for event in retried:
        outcome = by_id[event.message_id]
        code = error_code_label(event.error_code)
        retries[outcome.message.project_id or NO_LABEL, outcome.carrier or NO_LABEL, code] += 1
    metrics.count(metrics.instruments().send_retries, retries)
