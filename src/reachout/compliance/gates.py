"""The one ordered list of checks a send passes before it is accepted, whichever dialect it came through.

A send is refused at the first check it fails, with a typed `ReachoutError` that each dialect maps to its own
status and body (PolyAI 400 `{"detail"}`, Amigo 422 `{"detail"}`, Bland `{data: null, errors}`). The order:

    0. the use case exists, is not deleted and is the caller's   (the edge, `Directory.use_case`)
    1. the use case is active
    2. there is a number to send from (the use case's pool, or the project's numbers)
    3. a named sender is one of the project's numbers           (PolyAI's `agent_number`)
    4. a US long-code pool has a verified A2P 10DLC campaign
    5. the brand behind the use case is not suspended
    6. the destination is a valid phone number, and not one of the project's own
    7. the destination's country is one the use case may send to
    8. the destination is not a landline                         (may ask a paid lookup)
    9. the destination has not opted out                        (`refuse_opted_out`, when it is accepted)

Everything about the sender side comes before anything about the recipient, and free checks before the one
that may cost money. Consent is checked last, inside the transaction that accepts the send, so an opt-out
committed a moment earlier is never missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance import service as consent
from reachout.delivery.channels import Channel
from reachout.errors import ErrorCode, ReachoutError
from reachout.logs import get_logger
from reachout.phones.lookup import LineType, LineTypeLookup, LookupUnavailable, known_line_type
from reachout.phones.numbers import InvalidPhoneNumber, PhoneNumber, parse_e164
from reachout.tenancy.enums import BrandStatus, CampaignStatus, Capability, NumberKind
from reachout.tenancy.schemas import ProjectView, SenderNumber, UseCaseView

log = get_logger("gates")

US = "US"


@dataclass(frozen=True)
class SendCheck:
    """What a send asks for; `recipient_field` and `sender_field` are the dialect's names for its fields."""

    project: ProjectView
    channel: Channel
    to_number: str
    recipient_field: str
    use_case: UseCaseView | None = None
    agent_number: str | None = None
    sender_field: str = "agent_number"


@dataclass(frozen=True)
class Admitted:
    """A send that passed every check but consent: its recipient, and the numbers it may go from.

    `sender` is fixed when the caller named one; otherwise the sender is one of `candidates`, chosen at accept
    time for a project's numbers, or (for a use case, whose candidates are its pool) when it is dispatched.
    """

    recipient: PhoneNumber
    sender: str | None
    candidates: tuple[str, ...]


async def admit(check: SendCheck, lookup: LineTypeLookup | None = None) -> Admitted:
    """Run checks 1-8 in order, raising the first refusal; without `lookup`, libphonenumber types lines."""
    use_case = check.use_case
    if use_case is not None:
        refusal, senders = use_case_state(check.project, use_case, check.channel)
        if refusal is not None:
            raise refusal
        sender = None
    else:
        senders = _project_senders(check)
        sender = _named_sender(check)
    try:
        recipient = parse_e164(check.to_number)
    except InvalidPhoneNumber as error:
        raise ReachoutError(ErrorCode.INVALID_PHONE_NUMBER, f"{check.recipient_field}: {error}") from None
    if any(n.number == recipient.e164 for n in check.project.numbers):
        # Its agent would answer the text, and the two would talk to each other for ever.
        raise ReachoutError(
            ErrorCode.INVALID_PHONE_NUMBER,
            f"{check.recipient_field}: {recipient.e164} is one of this project's own numbers.",
        )
    if use_case is not None:
        refusal = _country_refusal(recipient, [use_case], check.recipient_field)
        if refusal is not None:
            raise refusal
    if check.channel is Channel.SMS:
        await _not_a_landline(check, recipient, lookup)
    return Admitted(recipient, sender, tuple(n.number for n in senders))


def _country_refusal(
    recipient: PhoneNumber, use_cases: Sequence[UseCaseView], field: str
) -> ReachoutError | None:
    """Check 7: the destination's country must be one a use case behind the sender may send to."""
    allowed = frozenset().union(*(u.allowed_countries for u in use_cases))
    if not use_cases or recipient.region in allowed:
        return None
    names = ", ".join(f"'{u.id}'" for u in use_cases)
    return ReachoutError(
        ErrorCode.COUNTRY_NOT_ALLOWED,
        f"{field}: {recipient.e164} is in {recipient.region or 'no country'}, which SMS use case "
        f"{names} may not send to (allowed: {', '.join(sorted(allowed)) or 'none'}).",
    )


def refuse_reply(
    recipient_number: str, channel: Channel, use_cases: Sequence[UseCaseView]
) -> ReachoutError | None:
    """Checks 6-8 for a text reachout sends on its own — a keyword answer, an agent's reply or fallback, a
    timer's text — from a number in `use_cases`' pools (none: a number of the project's own).

    The person texted first, so nothing here may cost money: a landline is one libphonenumber knows, never
    a paid lookup. Forged or real, a text from a country no use case behind the number may send to gets no
    answer.
    """
    try:
        recipient = parse_e164(recipient_number)
    except InvalidPhoneNumber as error:
        return ReachoutError(ErrorCode.INVALID_PHONE_NUMBER, f"to: {error}")
    refusal = _country_refusal(recipient, use_cases, "to")
    if refusal is None and channel is Channel.SMS and known_line_type(recipient) is LineType.LANDLINE:
        refusal = _landline("to", recipient)
    return refusal


def use_case_state(
    project: ProjectView, use_case: UseCaseView, channel: Channel
) -> tuple[ReachoutError | None, tuple[SenderNumber, ...]]:
    """Checks 1, 2, 4 and 5 of a use case, as a send through it is accepted and again as it is dispatched
    (its registrations may lapse meanwhile): the first refusal, and the pool numbers able to send now."""
    if use_case.deleted:
        return ReachoutError(ErrorCode.USE_CASE_NOT_FOUND, f"SMS use case '{use_case.id}' was deleted."), ()
    if not use_case.active:
        return ReachoutError(
            ErrorCode.USE_CASE_INACTIVE, f"SMS use case '{use_case.id}' is not active; activate it to send."
        ), ()
    own = {n.number: n for n in project.numbers if Capability(channel) in n.capabilities}
    pool = tuple(own[number] for number in use_case.sender_pool if number in own)
    if not pool:
        return ReachoutError(
            ErrorCode.NO_NUMBERS_PROVISIONED,
            f"No phone number is assigned to SMS use case '{use_case.id}'; add one to its sender pool.",
        ), ()
    refusal = _campaign_refusal(use_case, pool)
    if refusal is None and use_case.brand is BrandStatus.SUSPENDED:
        refusal = ReachoutError(
            ErrorCode.BRAND_SUSPENDED,
            f"The brand registration behind SMS use case '{use_case.id}' is suspended; "
            "nothing can be sent through it until the brand is reinstated.",
        )
    return refusal, pool


def _project_senders(check: SendCheck) -> tuple[SenderNumber, ...]:
    """Check 2 for a send from a project's numbers: those it may go from; refuses when there are none."""
    project, channel = check.project, Capability(check.channel)
    if not any(channel in n.capabilities for n in project.numbers):
        raise ReachoutError(
            ErrorCode.NO_NUMBERS_PROVISIONED,
            f"No {channel.upper()} numbers are provisioned for this project.",
        )
    if check.agent_number is not None:
        return tuple(n for n in project.numbers if channel in n.capabilities)
    senders = project.senders_for(project.environment, channel)
    if not senders:
        raise ReachoutError(
            ErrorCode.NO_NUMBERS_PROVISIONED,
            f"No {channel.upper()} numbers are provisioned for this project's '{project.environment}' "
            "environment.",
        )
    return senders


def _named_sender(check: SendCheck) -> str | None:
    """Check 3: a sender the caller named must be one of the project's numbers able to send on the channel."""
    if check.agent_number is None:
        return None
    try:
        sender = parse_e164(check.agent_number).e164
    except InvalidPhoneNumber as error:
        raise ReachoutError(ErrorCode.INVALID_PHONE_NUMBER, f"{check.sender_field}: {error}") from None
    if not any(
        n.number == sender and Capability(check.channel) in n.capabilities for n in check.project.numbers
    ):
        raise ReachoutError(
            ErrorCode.SENDER_NOT_PROVISIONED,
            f"{check.sender_field} {sender} is not one of the numbers provisioned for this project.",
        )
    return sender


def _campaign_refusal(use_case: UseCaseView, pool: Sequence[SenderNumber]) -> ReachoutError | None:
    """Check 4: US carriers block 10DLC traffic that no verified campaign covers."""
    if use_case.campaign is CampaignStatus.VERIFIED:
        return None
    us_long_codes = [
        n.number for n in pool if n.kind is NumberKind.LONG_CODE and parse_e164(n.number).region == US
    ]
    if us_long_codes:
        state = (
            "has no A2P 10DLC campaign" if use_case.campaign is None else f"campaign is {use_case.campaign}"
        )
        return ReachoutError(
            ErrorCode.CAMPAIGN_NOT_VERIFIED,
            f"SMS use case '{use_case.id}' sends from US long codes ({', '.join(us_long_codes)}) but its "
            f"{state}; a verified A2P 10DLC campaign is required.",
        )
    return None


async def _not_a_landline(check: SendCheck, recipient: PhoneNumber, lookup: LineTypeLookup | None) -> None:
    """Check 8: a text to a landline can never arrive. libphonenumber knows most lines; a lookup the rest."""
    line_type = known_line_type(recipient)
    if line_type is None and lookup is not None:
        try:
            facts = await lookup.look_up(recipient)
        except LookupUnavailable as error:
            # A lookup outage must not stop every send: the carrier refuses a landline itself (30006).
            log.warning(
                "line-type lookup unavailable; sending unchecked", lookup=lookup.name, error=str(error)
            )
            return
        except Exception:
            # Nor may a surprise in it (its cache's database, a garbled answer) turn a send into a 500.
            log.exception("line-type lookup failed; sending unchecked", lookup=lookup.name)
            return
        if not facts.valid:
            raise ReachoutError(
                ErrorCode.INVALID_PHONE_NUMBER,
                f"{check.recipient_field}: {recipient.e164} is not a real phone number (the network knows no "
                "such line).",
            )
        line_type = facts.line_type
    if line_type is LineType.LANDLINE:
        raise _landline(check.recipient_field, recipient)


def _landline(field: str, recipient: PhoneNumber) -> ReachoutError:
    return ReachoutError(
        ErrorCode.RECIPIENT_LANDLINE,
        f"{field}: {recipient.e164} is a landline, which cannot receive text messages.",
    )


@dataclass(frozen=True)
class Recipient:
    """Who a send goes to, for the consent check."""

    project_id: str
    number: str


async def refuse_opted_out(
    session: AsyncSession, recipients: Sequence[Recipient]
) -> list[ReachoutError | None]:
    """Check 9, for many sends at once: a refusal for each recipient who opted out of the project."""
    by_project: dict[str, set[str]] = {}
    for recipient in recipients:
        by_project.setdefault(recipient.project_id, set()).add(recipient.number)
    blocked = {
        (project_id, number)
        for project_id, numbers in sorted(by_project.items())
        for number in await consent.opted_out(session, project_id, numbers)
    }
    return [
        ReachoutError(
            ErrorCode.RECIPIENT_OPTED_OUT,
            f"{r.number} has opted out of this project's messages (they replied with an opt-out keyword "
            "such as STOP); they can opt back in by texting START.",
        )
        if (r.project_id, r.number) in blocked
        else None
        for r in recipients
    ]
