"""The texts reachout sends on its own in a conversation, and the rules each passes before it is queued.

Keyword answers (HELP, the STOP and START confirmations), agent replies and fallbacks, the inactivity warning
and timeout text all go through `queue_reply`:

1. consent: nothing but a keyword's answer goes to a person who opted out;
2. the destination gates of the sender (`compliance.gates.refuse_reply`): a valid number, in a country a use
   case behind the sending number may send to, not a known landline;
3. for keyword answers and fallbacks, at most one of each kind per person and window, however many texts ask
   for them — a stream of HELP, forged or real, must not become a stream of billed replies (SMS pumping).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance import gates
from reachout.compliance import service as compliance
from reachout.compliance.service import AutoReply
from reachout.delivery.channels import Channel
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.after_commit import log_after_commit
from reachout.logs import get_logger
from reachout.messaging import service as messaging
from reachout.messaging.schemas import ConversationText
from reachout.tenancy import service as tenancy

log = get_logger("replies")

# Answers to a keyword go even to a person who opted out: the opt-out's confirmation, and HELP.
KEYWORD_ANSWERS = frozenset({AutoReply.HELP, AutoReply.OPT_OUT, AutoReply.OPT_IN})


async def destination_refusal(
    session: AsyncSession, project_id: str, channel: Channel, sender: str, recipient: str
) -> ReachoutError | None:
    """Why reachout may not text `recipient` from `sender` on its own, or None when it may.

    One of reachout's own numbers is never answered: two agents would answer each other for ever.
    """
    if await tenancy.project_for_number(session, recipient) is not None:
        return ReachoutError(
            ErrorCode.INVALID_PHONE_NUMBER, f"to: {recipient} is one of reachout's own numbers."
        )
    use_cases = await tenancy.use_cases_sending_from(session, project_id, sender)
    return gates.refuse_reply(recipient, channel, use_cases)


async def queue_reply(
    session: AsyncSession,
    text: ConversationText,
    now: datetime,
    *,
    kind: AutoReply | None = None,
    window_seconds: float = 0.0,
) -> bool:
    """Queue a text reachout sends on its own if every rule lets it; whether it was queued.

    `kind` names an answer that is sent at most once per person and `window_seconds`.
    """
    assert text.from_number is not None  # a conversation's texts go from its agent number
    if kind not in KEYWORD_ANSWERS and await compliance.is_opted_out(
        session, text.project_id, text.to_number
    ):
        return False
    ids: dict[str, object] = {"conversation_id": text.conversation_id, "project_id": text.project_id}
    shown_kind = "reply" if kind is None else kind  # none: the agent's reply, the warning, the timeout text
    refusal = await destination_refusal(
        session, text.project_id, text.channel, text.from_number, text.to_number
    )
    if refusal is not None:
        event = "automatic reply not sent: the destination gates refuse it"
        fields = ids | {"kind": shown_kind, "reason": refusal.code.value}
        log_after_commit(session, log, [(logging.INFO, event, fields)])
        return False
    if kind is not None and not await compliance.may_auto_reply(
        session, text.project_id, text.to_number, kind, now, window_seconds
    ):
        event = "automatic reply not sent: one already went to this person within the window"
        fields = ids | {"kind": shown_kind, "window_seconds": window_seconds}
        log_after_commit(session, log, [(logging.INFO, event, fields)])
        return False
    [message_id] = await messaging.queue_texts(session, [text], now)
    fields = {"message_id": message_id, **ids, "kind": shown_kind}
    log_after_commit(session, log, [(logging.INFO, "reply queued", fields)])
    return True
