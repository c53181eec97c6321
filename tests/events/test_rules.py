"""The event catalogue, endpoint filters, attempt verdicts, endpoint standing, and signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from reachout.delivery.status import MessageStatus
from reachout.events import signing
from reachout.events.attempts import Health, Verdict, health_after, judge
from reachout.events.types import (
    AUDIT_ONLY,
    DELIVERED_TYPES,
    DESCRIPTIONS,
    EventType,
    UnknownEventFilter,
    check_filter,
    for_status,
    wanted,
)
from reachout.kit.clock import iso_utc

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEXT_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86_400.0


def test_every_status_has_its_event_and_every_type_its_description() -> None:
    assert {for_status(status).value for status in MessageStatus} <= {t.value for t in EventType}
    assert set(DESCRIPTIONS) == set(EventType)
    assert not AUDIT_ONLY & set(DELIVERED_TYPES)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ((), EventType.MESSAGE_SENT, True),
        (("*",), EventType.CONTACT_OPTED_OUT, True),
        (("message.*",), EventType.MESSAGE_DELIVERED, True),
        (("message.*",), EventType.CONVERSATION_ENDED, False),
        (("message.*", "conversation.ended"), EventType.CONVERSATION_ENDED, True),
        (("conversation.ended",), EventType.CONVERSATION_STARTED, False),
        ((), EventType.MESSAGE_REPORT_IGNORED, False),
        (("*",), EventType.MESSAGE_RETRY_SCHEDULED, False),
    ],
)
def test_an_endpoint_gets_the_types_its_filter_names(
    patterns: tuple[str, ...], event_type: EventType, expected: bool
) -> None:
    assert wanted(patterns, event_type) is expected


@pytest.mark.parametrize("pattern", ["message.sned", "messages.*", "message.report_ignored", "", "message"])
def test_a_filter_naming_nothing_delivered_is_refused(pattern: str) -> None:
    with pytest.raises(UnknownEventFilter, match="no event type"):
        check_filter([pattern])


def test_a_filter_keeps_its_order_once_each() -> None:
    assert check_filter(["message.*", "conversation.ended", "message.*"]) == (
        "message.*",
        "conversation.ended",
    )


@pytest.mark.parametrize(
    ("status", "verdict", "honoured"),
    [
        (200, Verdict.SUCCEEDED, False),
        (204, Verdict.SUCCEEDED, False),
        (299, Verdict.SUCCEEDED, False),
        (301, Verdict.RETRY, False),
        (302, Verdict.RETRY, False),
        (400, Verdict.RETRY, False),
        (410, Verdict.GONE, False),
        (429, Verdict.RETRY, True),
        (500, Verdict.RETRY, False),
        (503, Verdict.RETRY, True),
        (None, Verdict.RETRY, False),
    ],
)
def test_only_a_2xx_succeeds_and_only_429_and_503_ask_to_wait(
    status: int | None, verdict: Verdict, honoured: bool
) -> None:
    judgement = judge(status, None if status else "timed out after 15 s")
    assert (judgement.verdict, judgement.honours_retry_after) == (verdict, honoured)
    assert (judgement.error is None) is (verdict is Verdict.SUCCEEDED)


def test_a_redirect_says_it_was_not_followed() -> None:
    assert "not followed" in str(judge(302, None).error)


def test_an_endpoint_failing_every_attempt_for_five_days_is_disabled() -> None:
    first = NOW
    standing = health_after(Health(None), [(first, Verdict.RETRY)], 5 * DAY)
    assert standing == Health(first)
    standing = health_after(standing, [(first + timedelta(days=4, hours=23), Verdict.RETRY)], 5 * DAY)
    assert standing == Health(first)
    standing = health_after(standing, [(first + timedelta(days=5), Verdict.RETRY)], 5 * DAY)
    assert standing == Health(first, "every attempt failed for 5 days")


def test_one_success_starts_the_count_again() -> None:
    attempts = [
        (NOW, Verdict.RETRY),
        (NOW + timedelta(days=3), Verdict.SUCCEEDED),
        (NOW + timedelta(days=6), Verdict.RETRY),
    ]
    assert health_after(Health(None), attempts, 5 * DAY) == Health(NOW + timedelta(days=6))


def test_a_410_disables_at_once() -> None:
    assert (
        health_after(Health(None), [(NOW, Verdict.GONE)], 5 * DAY).disable == "the endpoint answered 410 Gone"
    )


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with"),
        ("whsec_not base64!", "base64"),
        ("whsec_c2hvcnQ=", "at least 24 bytes"),
    ],
)
def test_a_secret_is_whsec_and_base64_of_24_bytes_or_more(secret: str, problem: str) -> None:
    with pytest.raises(signing.InvalidSecret, match=problem):
        signing.check_secret(secret)


def test_the_reference_library_verifies_what_is_signed() -> None:
    now = datetime.now(UTC)  # the library checks the timestamp against the real clock
    body = signing.payload("message.sent", now, {"id": "m1", "body": "héllo"})
    headers = signing.headers("evt_1", body, [SECRET], now)
    assert Webhook(SECRET).verify(body, headers) == {
        "type": "message.sent",
        "timestamp": iso_utc(now),
        "data": {"id": "m1", "body": "héllo"},
    }
    assert headers["webhook-id"] == "evt_1" and headers["webhook-timestamp"] == str(int(now.timestamp()))


@given(st.timezones())
def test_a_moment_in_any_zone_signs_as_its_utc_instant(zone: object) -> None:
    body = signing.payload("message.sent", NOW, {})
    local = NOW.astimezone(zone)  # type: ignore[arg-type]
    assert signing.headers("e", body, [SECRET], local) == signing.headers("e", body, [SECRET], NOW)


def test_during_a_rotation_each_secret_signs() -> None:
    now = datetime.now(UTC)
    body = signing.payload("message.sent", now, {})
    headers = signing.headers("evt_2", body, [NEXT_SECRET, SECRET], now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, NEXT_SECRET):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "WFlaWFlaWFlaWFlaWFlaWFlaWFlaWFla").verify(body, headers)
