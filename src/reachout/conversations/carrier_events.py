"""What happens when a carrier reports: the one status path and the one inbound path every carrier shares.

The conversations domain owns the inbound flow and calls messaging below it for statuses and stored texts;
a status that ends a greeting badly comes back up through `UndeliverableGreetings`, as the dispatcher's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reachout.carriers.base import InboundText, StatusReport
from reachout.conversations.inbound import InboundOutcome, InboundPolicy, handle_inbound
from reachout.conversations.service import UndeliverableGreetings
from reachout.logs import get_logger
from reachout.messaging import reports as status_reports

log = get_logger("carrier_events")


class ConversationCarrierEvents:
    """Implements `carriers.base.CarrierEvents`: statuses go to messaging, texts to the conversations."""

    def __init__(self, *, debounce_seconds: float, auto_reply_window_seconds: float = 600.0) -> None:
        self._policy = InboundPolicy(debounce_seconds, auto_reply_window_seconds)
        self._failures = UndeliverableGreetings()

    async def statuses(self, session: Any, reports: Sequence[StatusReport]) -> None:
        outcomes = await status_reports.apply_statuses(session, reports, failures=self._failures)
        for report, outcome in zip(reports, outcomes, strict=True):
            if outcome is None:
                log.info("status report for an unknown message acknowledged", sid=report.sid)

    async def inbound(self, session: Any, text: InboundText) -> None:
        result = await handle_inbound(session, text, self._policy)
        if result.outcome is InboundOutcome.DUPLICATE:
            log.info("duplicate inbound text ignored", sid=text.sid)
