"""The send gates on their own: a lookup that fails in any way lets the send through (the carrier still
refuses a landline), and the use case's state is the same check at accept and at dispatch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reachout.compliance import gates
from reachout.delivery.channels import Channel
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.gcra import Rate
from reachout.phones.lookup import LineFacts, LineType, LookupUnavailable
from reachout.phones.numbers import PhoneNumber
from reachout.tenancy.enums import BrandStatus, CampaignStatus, Capability, Environment, NumberKind
from reachout.tenancy.schemas import ProjectView, SenderNumber, UseCaseView

SENDER = "+14155550100"
PROJECT = ProjectView(
    id="p",
    account_id="a",
    connector_id="c",
    environment=Environment.LIVE,
    rate_limit=Rate(count=10, per_seconds=1),
    agent={},
    numbers=(
        SenderNumber(
            SENDER, "sandbox", NumberKind.LONG_CODE, Environment.LIVE, frozenset({Capability.SMS}), None
        ),
    ),
)
USE_CASE = UseCaseView(
    id="u",
    project_id="p",
    name="n",
    active=True,
    deleted=False,
    sender_pool=(SENDER,),
    sticky_sender=True,
    area_code_geomatch=True,
    campaign=CampaignStatus.VERIFIED,
    brand=BrandStatus.VERIFIED,
    allowed_countries=frozenset({"US"}),
    messaging_service_sid=None,
    quiet_hours=None,
)


class Failing:
    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        raise self.error

    async def close(self) -> None:
        pass


async def test_a_lookup_outage_or_surprise_lets_the_send_through() -> None:
    check = gates.SendCheck(PROJECT, Channel.SMS, "+14155551234", "to", use_case=USE_CASE)
    for error in (LookupUnavailable("down"), RuntimeError("database is locked"), ValueError("bad JSON")):
        admitted = await gates.admit(check, Failing(error))
        assert admitted.recipient.e164 == "+14155551234"


async def test_a_whatsapp_send_is_not_refused_for_a_landline() -> None:
    """WhatsApp Business runs on landlines too; only a text message cannot reach one."""
    number = replace(PROJECT.numbers[0], capabilities=frozenset({Capability.WHATSAPP}))
    check = gates.SendCheck(replace(PROJECT, numbers=(number,)), Capability.WHATSAPP, "+442071838750", "to")
    assert (await gates.admit(check)).recipient.e164 == "+442071838750"


def test_the_use_case_state_names_the_first_problem() -> None:
    assert gates.use_case_state(PROJECT, USE_CASE, Channel.SMS) == (None, PROJECT.numbers)
    cases = [
        (replace(USE_CASE, deleted=True, active=False), ErrorCode.USE_CASE_NOT_FOUND),
        (replace(USE_CASE, active=False, brand=BrandStatus.SUSPENDED), ErrorCode.USE_CASE_INACTIVE),
        (replace(USE_CASE, sender_pool=("+14155550199",)), ErrorCode.NO_NUMBERS_PROVISIONED),
        (replace(USE_CASE, campaign=None, brand=BrandStatus.SUSPENDED), ErrorCode.CAMPAIGN_NOT_VERIFIED),
        (replace(USE_CASE, brand=BrandStatus.SUSPENDED), ErrorCode.BRAND_SUSPENDED),
    ]
    for use_case, code in cases:
        refusal, _ = gates.use_case_state(PROJECT, use_case, Channel.SMS)
        assert refusal is not None and refusal.code is code


class Answering:
    name = "answering"

    def __init__(self, facts: LineFacts) -> None:
        self.facts = facts

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        return self.facts

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("facts", "code"),
    [
        (LineFacts("+14155551234", True, LineType.LANDLINE), ErrorCode.RECIPIENT_LANDLINE),
        (LineFacts("+14155551234", False, LineType.UNKNOWN), ErrorCode.INVALID_PHONE_NUMBER),
    ],
)
async def test_a_lookups_landline_or_no_such_number_refuses(facts: LineFacts, code: ErrorCode) -> None:
    check = gates.SendCheck(PROJECT, Channel.SMS, "+14155551234", "to", use_case=USE_CASE)
    with pytest.raises(ReachoutError) as refused:
        await gates.admit(check, Answering(facts))
    assert refused.value.code is code
