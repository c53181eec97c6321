"""What happens when a carrier reports: the one status path and the one inbound path every carrier shares.

The conversations domain owns the inbound flow and calls messaging below it for statuses and stored texts;
a status that ends a greeting badly comes back up through `UndeliverableGreetings`, as the dispatcher's do.
Each text taken in is logged once its transaction commits: its ids and what became of it, never its sender
or its words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from reachout import logs
from reachout.carriers.base import InboundText, StatusReport
from reachout.compliance.keywords import KeywordKind
from reachout.conversations.inbound import InboundOutcome, InboundPolicy, InboundResult, handle_inbound
from reachout.conversations.service import UndeliverableGreetings
from reachout.kit.after_commit import LogLine, after_commit, log_after_commit
from reachout.logs import get_logger, last_digits
from reachout.messaging import reports as status_reports

log = get_logger("inbound")

_CONSENT_EVENTS = {KeywordKind.OPT_OUT: "opt-out recorded", KeywordKind.OPT_IN: "opt-in recorded"}


class ConversationCarrierEvents:
    """Implements `carriers.base.CarrierEvents`: statuses go to messaging, texts to the conversations."""

    def __init__(self, *, debounce_seconds: float, auto_reply_window_seconds: float = 600.0) -> None:
        self._policy = InboundPolicy(debounce_seconds, auto_reply_window_seconds)
        self._failures = UndeliverableGreetings()

    async def statuses(self, session: Any, reports: Sequence[StatusReport]) -> None:
        outcomes = await status_reports.apply_statuses(session, reports, failures=self._failures)
        unknown = [
            (logging.INFO, "status report for an unknown message acknowledged", {"carrier_sid": report.sid})
            for report, outcome in zip(reports, outcomes, strict=True)
            if outcome is None
        ]
        log_after_commit(session, log, unknown)

    async def inbound(self, session: Any, text: InboundText) -> None:
        # Registered first, so the text's line comes before what it led to (a reply queued, say).
        taken: list[InboundResult] = []
        after_commit(session, partial(_log_inbound, text, taken))
        taken.append(await handle_inbound(session, text, self._policy))


def _log_inbound(text: InboundText, taken: Sequence[InboundResult]) -> None:
    bound = logs.bound(log)
    for level, event, fields in _inbound_lines(text, taken[0]):
        bound.log(level, event, **fields)


def _inbound_lines(text: InboundText, result: InboundResult) -> list[LogLine]:
    fields: dict[str, object] = {
        "message_id": result.message_id,
        "conversation_id": result.conversation_id,
        "carrier_sid": text.sid,
        "project_id": result.project_id,
        "carrier": text.carrier,
        "channel": text.channel,
        "outcome": result.outcome,
    }
    if result.keyword is not None:
        fields["keyword"] = result.keyword
    if result.outcome is InboundOutcome.ORPHANED:
        # The number is reachout's side of the text (never the sender's): its end says which to provision.
        orphan = fields | {"to": last_digits(text.to_number)}
        return [(logging.WARNING, "text to a number no project owns kept as an orphan", orphan)]
    lines: list[LogLine] = [(logging.INFO, "inbound text", fields)]
    if result.consent is not None:
        ids = {key: fields[key] for key in ("message_id", "conversation_id", "carrier_sid", "project_id")}
        consent = ids | {"reason": f"keyword:{result.keyword}"}
        lines.append((logging.INFO, _CONSENT_EVENTS[result.consent], consent))
    return lines
