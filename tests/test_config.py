"""Settings that are refused at start-up rather than misbehaving later."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reachout.app import build_runtime
from reachout.config import Settings
from tests.support.service import make_settings


def test_routes_without_receipts_must_be_country_codes() -> None:
    with pytest.raises(ValidationError, match="not ISO 3166-1 alpha-2 country codes: XX, ca"):
        Settings(sandbox_routes_without_receipts=frozenset({"CA", "ca", "XX"}))
    assert Settings(sandbox_routes_without_receipts=frozenset({"CA"})).sandbox_routes_without_receipts == {
        "CA"
    }


def test_twilio_lookups_need_a_twilio_account() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", line_type_lookup="twilio")
    with pytest.raises(ValueError, match="needs a Twilio account"):
        build_runtime(settings)


def test_the_log_level_is_a_level_in_either_case() -> None:
    assert Settings(log_level="DEBUG").log_level == Settings(log_level="debug").log_level == "debug"
    with pytest.raises(ValidationError, match="not a log level: use one of debug, info, warning"):
        Settings(log_level="verbose")
