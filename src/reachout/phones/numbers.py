"""Phone number validation: numbers are stored and exchanged in canonical E.164, checked by libphonenumber.

``parse_e164`` is strict: it accepts only ``+`` followed by ASCII digits, exactly as libphonenumber would
format the number, and only if the number is valid. ``parse_national`` accepts what a person types for a
given country.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult, geocoder
from phonenumbers import timezone as pn_timezone

# E.164 caps a number at 15 digits; the minimum is left to libphonenumber, as some valid numbers are
# shorter than 8 digits (Niue's +683 4002, Tokelau's +690 3291).
_E164_SHAPE: Final = re.compile(r"\+[0-9]{1,15}")
_E164_EXAMPLE: Final = "+14155551234"
_NON_GEOGRAPHIC_REGION: Final = "001"
_UNKNOWN_TIME_ZONE: Final = "Etc/Unknown"


class NumberType(StrEnum):
    """The kind of line a number belongs to, as libphonenumber classifies it."""

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


_NUMBER_TYPES: Final[Mapping[int, NumberType]] = MappingProxyType(
    {
        PhoneNumberType.MOBILE: NumberType.MOBILE,
        PhoneNumberType.FIXED_LINE: NumberType.FIXED_LINE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE: NumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST: NumberType.SHARED_COST,
        PhoneNumberType.VOIP: NumberType.VOIP,
        PhoneNumberType.PERSONAL_NUMBER: NumberType.PERSONAL_NUMBER,
        PhoneNumberType.PAGER: NumberType.PAGER,
        PhoneNumberType.UAN: NumberType.UAN,
        PhoneNumberType.VOICEMAIL: NumberType.VOICEMAIL,
        PhoneNumberType.UNKNOWN: NumberType.UNKNOWN,
    }
)

_PN_TYPES: Final[Mapping[NumberType, int]] = MappingProxyType(
    {ours: pn for pn, ours in _NUMBER_TYPES.items()}
)

_PARSE_FAILURES: Final[Mapping[int, str]] = MappingProxyType(
    {
        NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        NumberParseException.NOT_A_NUMBER: "it does not look like a phone number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_LONG: "too long",
    }
)

_IMPOSSIBLE_LENGTHS: Final[Mapping[int, str]] = MappingProxyType(
    {
        ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        ValidationResult.TOO_SHORT: "too short for country code +{cc}",
        ValidationResult.TOO_LONG: "too long for country code +{cc}",
        ValidationResult.INVALID_LENGTH: "wrong length for country code +{cc}",
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number missing its area code",
    }
)


class InvalidPhoneNumber(ValueError):
    """A phone number was malformed or not a real number; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PhoneNumber:
    """A valid phone number in canonical E.164. Build one with ``parse_e164`` or ``parse_national``.

    Its type comes with it: classifying the number is how it was validated. What else libphonenumber knows
    about the line (region, time zones, place) is worked out on first use.
    """

    e164: str
    number_type: NumberType = field(compare=False)
    _parsed: phonenumbers.PhoneNumber = field(compare=False, repr=False)

    @cached_property
    def region(self) -> str | None:
        """The ISO 3166-1 alpha-2 code, or None for non-geographic numbers (e.g. +800)."""
        region = phonenumbers.region_code_for_number(self._parsed)
        return None if region in (None, _NON_GEOGRAPHIC_REGION) else region

    @cached_property
    def time_zones(self) -> tuple[str, ...]:
        """The number's time zones; empty when libphonenumber does not know them."""
        country_code = self._parsed.country_code or 0  # a parsed number always has one
        if phonenumbers.is_number_type_geographical(_PN_TYPES[self.number_type], country_code):
            # What `time_zones_for_number` does after classifying the number, which is done already.
            zones = pn_timezone.time_zones_for_geographical_number(self._parsed)
        else:
            zones = pn_timezone.time_zones_for_number(self._parsed)
        return tuple(z for z in zones if z != _UNKNOWN_TIME_ZONE)

    @cached_property
    def place(self) -> str | None:
        """Where the number is, as libphonenumber's geocoder names it: a city, or a state where it knows no
        finer ('New York' for 212 and for its overlay 646); None when it does not say."""
        description = geocoder.description_for_number(self._parsed, "en")
        return description.split(",")[0].strip() or None

    @property
    def is_landline(self) -> bool:
        """True only for numbers known to be fixed lines (not 'fixed line or mobile')."""
        return self.number_type is NumberType.FIXED_LINE

    @property
    def national_destination_code(self) -> str:
        """The NDC (area code or mobile prefix); the 3-digit NPA for +1 numbers; '' if there is none."""
        significant = phonenumbers.national_significant_number(self._parsed)
        if self._parsed.country_code == 1:
            return significant[:3]
        return significant[: phonenumbers.length_of_national_destination_code(self._parsed)]

    @property
    def area_code(self) -> str:
        """Same as ``national_destination_code``."""
        return self.national_destination_code


def parse_e164(text: str) -> PhoneNumber:
    """Parse a canonical E.164 number such as ``+14155551234``.

    Raises InvalidPhoneNumber if it is not in E.164 form or is not a valid number.
    """
    if not isinstance(text, str):
        raise InvalidPhoneNumber(f"expected a phone number as a string, got {type(text).__name__}")
    if not _E164_SHAPE.fullmatch(text):
        if text.startswith("+") and text[1:].isascii() and text[1:].isdigit():
            raise InvalidPhoneNumber(f"{text!r} is too long for E.164 (at most 15 digits after the '+')")
        raise InvalidPhoneNumber(
            f"{text!r} is not in E.164 format (expected +<country code><number>, e.g. {_E164_EXAMPLE})"
        )
    number, kind = _parse(text, None)
    canonical = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if canonical != text:
        # libphonenumber forgives some mistakes, such as a national trunk prefix after the country code
        # (+44 0 20...); a stored E.164 number must be exact, so point at the right spelling instead.
        raise InvalidPhoneNumber(f"{text!r} is not in canonical E.164 form (did you mean {canonical}?)")
    return PhoneNumber(canonical, kind, number)


def parse_national(text: str, country_code: str) -> PhoneNumber:
    """Parse a number as dialled in a country (ISO 3166-1 alpha-2, e.g. ``"GB"``), e.g. ``020 7183 8750``.

    International numbers starting with ``+`` are accepted too. Raises InvalidPhoneNumber.
    """
    if not isinstance(text, str):
        raise InvalidPhoneNumber(f"expected a phone number as a string, got {type(text).__name__}")
    # Only ASCII letters may be upper-cased: "ß".upper() is "SS", which is South Sudan.
    region = country_code.upper() if isinstance(country_code, str) and country_code.isascii() else ""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidPhoneNumber(f"{country_code!r} is not a known ISO 3166-1 alpha-2 country code")
    number, kind = _parse(text, region)
    return PhoneNumber(phonenumbers.format_number(number, PhoneNumberFormat.E164), kind, number)


def _parse(text: str, region: str | None) -> tuple[phonenumbers.PhoneNumber, NumberType]:
    """Parse with libphonenumber and insist the result is a valid number; returns it with its type."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason = _PARSE_FAILURES.get(exc.error_type, "it could not be parsed")
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number ({reason})") from None
    # `is_valid_number` is `number_type(...) != UNKNOWN` (both find the number's region, then match its
    # digits against that region's patterns): one classification answers both, at half the cost.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        possible = phonenumbers.is_possible_number_with_reason(number)
        template = _IMPOSSIBLE_LENGTHS.get(possible, "no such number in the numbering plan of +{cc}")
        reason = template.format(cc=number.country_code)
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number ({reason})")
    return number, _NUMBER_TYPES.get(kind, NumberType.UNKNOWN)


def is_region(code: str) -> bool:
    """Whether `code` is an ISO 3166-1 alpha-2 region libphonenumber knows (upper case, as it spells them)."""
    return code in phonenumbers.SUPPORTED_REGIONS
