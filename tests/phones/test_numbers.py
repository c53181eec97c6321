import dataclasses

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as pn_timezone

from reachout.phones.numbers import (
    InvalidPhoneNumber,
    NumberType,
    parse_e164,
    parse_national,
)

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
PN_TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]


@pytest.mark.parametrize(
    ("text", "region", "number_type"),
    [
        ("+14155551234", "US", NumberType.FIXED_LINE_OR_MOBILE),
        ("+15005550001", "US", NumberType.PERSONAL_NUMBER),
        ("+18005551234", "US", NumberType.TOLL_FREE),
        ("+442071838750", "GB", NumberType.FIXED_LINE),
        ("+447400123456", "GB", NumberType.MOBILE),
        ("+447911123456", "GG", NumberType.MOBILE),  # 07911 is a Guernsey range
        ("+4915123456789", "DE", NumberType.MOBILE),
        ("+390612345678", "IT", NumberType.FIXED_LINE),  # Italy keeps its leading 0
        ("+6834002", "NU", NumberType.FIXED_LINE),  # only 7 digits, and valid
        ("+80012345678", None, NumberType.TOLL_FREE),  # international freephone has no region
    ],
)
def test_valid_numbers(text: str, region: str | None, number_type: NumberType) -> None:
    number = parse_e164(text)
    assert number.e164 == text
    assert number.region == region
    assert number.number_type is number_type


def test_time_zones() -> None:
    assert parse_e164("+18085551234").time_zones == ("Pacific/Honolulu",)
    assert parse_e164("+14155551234").time_zones == ("America/Los_Angeles",)
    assert parse_e164("+442071838750").time_zones == ("Europe/London",)
    assert "America/New_York" in parse_e164("+18005551234").time_zones  # toll-free spans the continent
    assert parse_e164("+80012345678").time_zones == ()  # libphonenumber's "Etc/Unknown" is dropped


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("+14155551234", "415"),
        ("+18085551234", "808"),
        ("+18005551234", "800"),
        ("+15005550001", "500"),
        ("+442071838750", "20"),
        ("+447400123456", "7400"),
        ("+390612345678", "06"),
        ("+6834002", ""),
    ],
)
def test_area_code(text: str, code: str) -> None:
    number = parse_e164(text)
    assert number.national_destination_code == code
    assert number.area_code == code


def test_only_fixed_lines_are_landlines() -> None:
    assert parse_e164("+442071838750").is_landline
    assert not parse_e164("+447400123456").is_landline
    assert not parse_e164("+14155551234").is_landline  # could be either, so not known to be a landline


def test_a_phone_number_is_immutable() -> None:
    number = parse_e164("+14155551234")
    assert number == parse_national("(415) 555-1234", "US")
    assert number != parse_e164("+14155551235")
    assert (number.region, number.number_type, number.time_zones) == (
        "US",
        NumberType.FIXED_LINE_OR_MOBILE,
        ("America/Los_Angeles",),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        number.e164 = "+15005550001"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "4155551234",
            "'4155551234' is not in E.164 format (expected +<country code><number>, e.g. +14155551234)",
        ),
        ("+1415555", "'+1415555' is not a valid phone number (too short for country code +1)"),
        ("+1 415 555 1234", "'+1 415 555 1234' is not in E.164 format"),
        ("+1-415-555-1234", "is not in E.164 format"),
        ("+1(415)5551234", "is not in E.164 format"),
        ("+1415555123a", "is not in E.164 format"),
        ("+1800FLOWERS", "is not in E.164 format"),
        ("tel:+14155551234", "is not in E.164 format"),
        ("++14155551234", "is not in E.164 format"),
        ("+14155551234\n", "is not in E.164 format"),
        (" +14155551234", "is not in E.164 format"),
        ("+１４１５５５５１２３４", "is not in E.164 format"),  # full-width digits  # noqa: RUF001
        ("+٤١٥٥٥٥١٢٣٤", "is not in E.164 format"),  # Arabic-Indic digits
        ("", "'' is not in E.164 format"),
        ("+", "'+' is not in E.164 format"),
        ("+1234567890123456", "'+1234567890123456' is too long for E.164 (at most 15 digits after the '+')"),
        ("+0123456789", "'+0123456789' is not a valid phone number (unknown country code)"),
        ("+9991234567", "'+9991234567' is not a valid phone number (unknown country code)"),
        ("+141555512345", "'+141555512345' is not a valid phone number (too long for country code +1)"),
        ("+10005551234", "'+10005551234' is not a valid phone number (no such number"),
        ("+4402071838750", "'+4402071838750' is not in canonical E.164 form (did you mean +442071838750?)"),
    ],
)
def test_invalid_e164_numbers_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as raised:
        parse_e164(text)
    assert reason in raised.value.reason
    assert str(raised.value) == raised.value.reason


def test_non_strings_are_rejected() -> None:
    with pytest.raises(InvalidPhoneNumber, match="got int"):
        parse_e164(14155551234)  # type: ignore[arg-type]
    with pytest.raises(InvalidPhoneNumber, match="got NoneType"):
        parse_national(None, "US")  # type: ignore[arg-type]


def test_invalid_phone_number_is_a_value_error() -> None:
    assert issubclass(InvalidPhoneNumber, ValueError)


@pytest.mark.parametrize(
    ("text", "country", "e164"),
    [
        ("(415) 555-1234", "US", "+14155551234"),
        ("415.555.1234", "US", "+14155551234"),
        ("1 415 555 1234", "US", "+14155551234"),
        ("1-800-FLOWERS", "US", "+18003569377"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("07400 123456", "gb", "+447400123456"),
        ("06 1234 5678", "IT", "+390612345678"),
        ("+44 20 7183 8750", "US", "+442071838750"),
    ],
)
def test_national_numbers(text: str, country: str, e164: str) -> None:
    assert parse_national(text, country).e164 == e164


@pytest.mark.parametrize(
    ("text", "country", "reason"),
    [
        ("020 7183 8750", "ZZ", "'ZZ' is not a known ISO 3166-1 alpha-2 country code"),
        ("020 7183 8750", "UK", "'UK' is not a known ISO 3166-1 alpha-2 country code"),  # it is GB
        ("020 7183 8750", "", "'' is not a known"),
        ("020 7183 8750", "001", "'001' is not a known"),
        ("020 7183 8750", "ß", "'ß' is not a known"),  # "ß".upper() would be SS, South Sudan
        ("555-1234", "US", "'555-1234' is not a valid phone number"),
        ("hello", "US", "'hello' is not a valid phone number (it does not look like a phone number)"),
        ("", "US", "'' is not a valid phone number"),
        ("(415) 555-1234", "GB", "'(415) 555-1234' is not a valid phone number"),
    ],
)
def test_invalid_national_numbers_say_why(text: str, country: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as raised:
        parse_national(text, country)
    assert reason in raised.value.reason


def test_every_libphonenumber_type_has_a_number_type() -> None:
    assert {t.name.lower() for t in NumberType} == {
        name.lower() for name in vars(PhoneNumberType) if name.isupper()
    }


@st.composite
def example_numbers(draw: st.DrawFn) -> tuple[str, phonenumbers.PhoneNumber]:
    region = draw(st.sampled_from(REGIONS))
    number_type = draw(st.sampled_from(PN_TYPES))
    example = phonenumbers.example_number_for_type(region, number_type)
    if example is None:
        example = phonenumbers.example_number(region)
    assert example is not None
    return region, example


@settings(deadline=None)  # libphonenumber loads each region's metadata on first use
@given(example_numbers())
def test_example_numbers_round_trip(example: tuple[str, phonenumbers.PhoneNumber]) -> None:
    region, number = example
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    parsed = parse_e164(e164)
    assert parsed.e164 == e164
    assert parse_e164(parsed.e164) == parsed
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    assert parse_national(national, region).e164 == e164


@settings(deadline=None)
@given(st.sampled_from(sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)))
def test_non_geographic_examples_round_trip(country_code: int) -> None:
    example = phonenumbers.example_number_for_non_geo_entity(country_code)
    assert example is not None
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    parsed = parse_e164(e164)
    assert parsed.e164 == e164
    assert parsed.region is None


e164_ish = st.builds(
    lambda prefix, digits: prefix + digits,
    st.sampled_from(["+", "", "+1", "+44", "00", "++"]),
    st.text(alphabet="0123456789 -()+.", max_size=18),
)


@settings(deadline=None)
@given(st.one_of(st.text(max_size=30), e164_ish))
def test_arbitrary_text_only_ever_raises_invalid_phone_number(text: str) -> None:
    try:
        number = parse_e164(text)
    except InvalidPhoneNumber as exc:
        assert exc.reason
    else:
        assert number.e164 == text


@settings(deadline=None)
@given(st.one_of(st.text(max_size=30), e164_ish), st.one_of(st.sampled_from(REGIONS), st.text(max_size=3)))
def test_arbitrary_national_text_only_ever_raises_invalid_phone_number(text: str, country: str) -> None:
    try:
        number = parse_national(text, country)
    except InvalidPhoneNumber as exc:
        assert exc.reason
    else:
        assert parse_e164(number.e164) == number


digits_after_a_country_code = st.builds(
    lambda code, digits: f"+{code}{digits}",
    st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
    st.text(alphabet="0123456789", min_size=4, max_size=12),
)


@settings(deadline=None, max_examples=500)
@given(st.one_of(digits_after_a_country_code, example_numbers().map(lambda example: _e164(example[1]))))
def test_one_classification_agrees_with_libphonenumbers_own_answers(text: str) -> None:
    """The parse classifies a number once and derives validity from it; libphonenumber asked each question
    separately must answer the same."""
    number = phonenumbers.parse(text, None)
    canonical = phonenumbers.format_number(number, PhoneNumberFormat.E164) == text
    try:
        parsed = parse_e164(text)
    except InvalidPhoneNumber:
        assert not (phonenumbers.is_valid_number(number) and canonical)
        return
    assert phonenumbers.is_valid_number(number)
    assert parsed.number_type is NumberType(
        PhoneNumberType.to_string(phonenumbers.number_type(number)).lower()
    )
    expected_zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    assert parsed.time_zones == expected_zones


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)
