"""Twilio Lookup v2 behind the line-type port: the real `twilio` library talking to the Twilio emulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from reachout.carriers.twilio.carrier import TwilioSettings
from reachout.carriers.twilio.lookup import TwilioLookup
from reachout.phones.lookup import LineFacts, LineType, LineTypeLookup, LookupUnavailable
from reachout.phones.numbers import parse_e164
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN, TwilioEmulator, running_emulator

MOBILE, LANDLINE, VOIP = "+14155551234", "+14155550100", "+14155550101"


@pytest.fixture
async def emulator() -> AsyncIterator[TwilioEmulator]:
    async with running_emulator() as running:
        yield running


def lookup_for(
    emulator: TwilioEmulator, *, auth_token: str = AUTH_TOKEN, timeout: float = 5.0
) -> TwilioLookup:
    settings = TwilioSettings(
        ACCOUNT_SID,
        auth_token,
        "https://reachout.example.test",
        api_base_url=emulator.base_url,
        timeout_seconds=timeout,
    )
    return TwilioLookup(settings, lookup_base_url=emulator.base_url)


async def look_up(
    emulator: TwilioEmulator, number: str, *, auth_token: str = AUTH_TOKEN, timeout: float = 5.0
) -> LineFacts:
    lookup = lookup_for(emulator, auth_token=auth_token, timeout=timeout)
    try:
        return await lookup.look_up(parse_e164(number))
    finally:
        await lookup.close()


def test_it_is_a_line_type_lookup() -> None:
    lookup: LineTypeLookup = TwilioLookup(TwilioSettings(ACCOUNT_SID, AUTH_TOKEN, "https://x.test"))
    assert lookup.name == "twilio"


async def test_a_mobile_asks_for_line_type_intelligence_alone(emulator: TwilioEmulator) -> None:
    facts = await look_up(emulator, MOBILE)
    assert facts == LineFacts(MOBILE, valid=True, line_type=LineType.MOBILE, carrier_name="Emulated Wireless")
    assert emulator.lookups == [MOBILE]
    [(method, path, params)] = emulator.requests
    assert (method, path) == ("GET", f"/v2/PhoneNumbers/{MOBILE}")
    assert params == {"Fields": "line_type_intelligence"}


@pytest.mark.parametrize(
    ("twilio_type", "line_type"),
    [
        ("landline", LineType.LANDLINE),
        ("fixedVoip", LineType.FIXED_VOIP),
        ("nonFixedVoip", LineType.NON_FIXED_VOIP),
        ("tollFree", LineType.TOLL_FREE),
        ("unknown", LineType.UNKNOWN),
        ("satellite", LineType.UNKNOWN),  # a type Twilio might add later
    ],
)
async def test_twilios_line_type_is_the_ports(
    emulator: TwilioEmulator, twilio_type: str, line_type: LineType
) -> None:
    emulator.line_types[LANDLINE] = twilio_type
    facts = await look_up(emulator, LANDLINE)
    assert (facts.number, facts.valid, facts.line_type) == (LANDLINE, True, line_type)


async def test_the_carrier_name_passes_through(emulator: TwilioEmulator) -> None:
    emulator.line_types[VOIP] = "fixedVoip"
    emulator.carrier_names[VOIP] = "Emulated Voice Co."
    facts = await look_up(emulator, VOIP)
    assert (facts.line_type, facts.carrier_name) == (LineType.FIXED_VOIP, "Emulated Voice Co.")


async def test_a_number_twilio_calls_invalid_is_not_valid(emulator: TwilioEmulator) -> None:
    emulator.invalid.add(MOBILE)
    assert await look_up(emulator, MOBILE) == LineFacts(MOBILE, valid=False, line_type=LineType.UNKNOWN)


async def test_a_404_with_twilios_not_found_code_means_no_such_number(emulator: TwilioEmulator) -> None:
    emulator.lookup_fault = 404
    assert await look_up(emulator, MOBILE) == LineFacts(MOBILE, valid=False, line_type=LineType.UNKNOWN)


async def test_a_404_without_twilios_code_is_a_wrong_url_not_an_invalid_number(
    emulator: TwilioEmulator,
) -> None:
    settings = TwilioSettings(ACCOUNT_SID, AUTH_TOKEN, "https://x.test", timeout_seconds=5.0)
    lookup = TwilioLookup(settings, lookup_base_url=emulator.base_url + "/elsewhere")
    try:
        with pytest.raises(LookupUnavailable, match="HTTP 404"):
            await lookup.look_up(parse_e164(MOBILE))
    finally:
        await lookup.close()


@pytest.mark.parametrize("status", [503, 429, 500])
async def test_an_outage_is_unavailable(emulator: TwilioEmulator, status: int) -> None:
    emulator.lookup_fault = status
    with pytest.raises(LookupUnavailable, match=f"unavailable: HTTP {status}"):
        await look_up(emulator, MOBILE)


async def test_wrong_credentials_are_unavailable_naming_status_and_code(emulator: TwilioEmulator) -> None:
    with pytest.raises(LookupUnavailable) as raised:
        await look_up(emulator, MOBILE, auth_token="not_the_token")
    assert str(raised.value) == "Twilio Lookup refused the request: HTTP 401, Twilio code 20003"
    assert raised.value.__suppress_context__  # the library's exception, which quotes the request, stays out


async def test_a_hang_is_unavailable_within_the_timeout(emulator: TwilioEmulator) -> None:
    emulator.hang_lookups = 1
    started = time.monotonic()
    with pytest.raises(LookupUnavailable, match="did not answer: TimeoutError"):
        await look_up(emulator, MOBILE, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert emulator.lookups == [MOBILE]


async def test_a_connection_refused_is_unavailable() -> None:
    async with running_emulator() as stopped_soon:
        base_url = stopped_soon.base_url
    lookup = TwilioLookup(
        TwilioSettings(ACCOUNT_SID, AUTH_TOKEN, "https://x.test", timeout_seconds=5.0),
        lookup_base_url=base_url,
    )
    try:
        with pytest.raises(LookupUnavailable, match="did not answer"):
            await lookup.look_up(parse_e164(MOBILE))
    finally:
        await lookup.close()


async def test_the_auth_token_never_shows(emulator: TwilioEmulator) -> None:
    lookup = lookup_for(emulator)
    assert AUTH_TOKEN not in repr(lookup) and AUTH_TOKEN not in str(lookup)
    errors: list[LookupUnavailable] = []
    for fault, token in [(503, AUTH_TOKEN), (None, AUTH_TOKEN + "x")]:
        emulator.lookup_fault = fault
        with pytest.raises(LookupUnavailable) as raised:
            await look_up(emulator, MOBILE, auth_token=token)
        errors.append(raised.value)
    assert all(AUTH_TOKEN not in f"{e} {e!r}" for e in errors)


# --- the emulator's own Lookup answers, as Twilio documents them --------------------------------------------


async def lookup_json(emulator: TwilioEmulator, number: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(auth=(ACCOUNT_SID, AUTH_TOKEN)) as client:
        return await client.get(f"{emulator.base_url}/v2/PhoneNumbers/{number}", params=params)


@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("+11234567890", "INVALID_BUT_POSSIBLE"),  # no North American area code starts with 1
        ("+1415", "TOO_SHORT"),
        ("+141555512345678", "TOO_LONG"),
        ("not-a-number", "NOT_A_NUMBER"),
    ],
)
async def test_the_emulator_answers_an_invalid_number_with_200_and_its_validation_error(
    emulator: TwilioEmulator, number: str, error: str
) -> None:
    response = await lookup_json(emulator, number, Fields="line_type_intelligence")
    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["validation_errors"]) == (False, [error])
    assert body["line_type_intelligence"] is None


async def test_the_emulator_gives_line_type_intelligence_only_when_asked(emulator: TwilioEmulator) -> None:
    plain = (await lookup_json(emulator, MOBILE)).json()
    asked = (await lookup_json(emulator, MOBILE, Fields="line_type_intelligence")).json()
    assert plain["line_type_intelligence"] is None
    assert (plain["valid"], plain["validation_errors"], plain["country_code"]) == (True, [], "US")
    assert (plain["calling_country_code"], plain["national_format"]) == ("1", "(415) 555-1234")
    assert asked["line_type_intelligence"] == {
        "mobile_country_code": "001",
        "mobile_network_code": "01",
        "carrier_name": "Emulated Wireless",
        "type": "mobile",
        "error_code": None,
    }


async def test_the_emulator_gives_no_carrier_for_types_twilio_has_none_for(emulator: TwilioEmulator) -> None:
    emulator.line_types[MOBILE] = "tollFree"
    body = (await lookup_json(emulator, MOBILE, Fields="line_type_intelligence")).json()
    assert body["line_type_intelligence"] == {
        "mobile_country_code": None,
        "mobile_network_code": None,
        "carrier_name": None,
        "type": "tollFree",
        "error_code": None,
    }
