"""Standard Webhooks payloads and signatures, made by the specification's reference library."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from math import floor
from typing import Any

from standardwebhooks.webhooks import Webhook

from reachout.kit.clock import iso_utc

SECRET_PREFIX = "whsec_"  # noqa: S105 (the specification's prefix, no secret)
MIN_SECRET_BYTES = 24


class InvalidSecret(ValueError):
    """A webhook secret that is not `whsec_` + base64 of enough bytes."""


def check_secret(secret: str) -> str:
    """The secret as given, once it is `whsec_` and the base64 of at least 24 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"a webhook secret starts with '{SECRET_PREFIX}'")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidSecret(f"a webhook secret holds at least {MIN_SECRET_BYTES} bytes (it has {len(key)})")
    return secret


def payload(event_type: str, occurred_at: datetime, data: Any) -> str:
    """The body of a delivery: `{"type", "timestamp", "data"}`, compact JSON."""
    return json.dumps(
        {"type": event_type, "timestamp": iso_utc(occurred_at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def headers(event_id: str, body: str, secrets: Sequence[str], now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: each secret signs, space-separated (a rotation)."""
    # The library reads a naive or aware datetime's wall time as UTC: only a UTC instant signs right.
    at = now.astimezone(UTC)
    signatures = " ".join(_signer(secret).sign(event_id, at, body) for secret in secrets)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    """The library's signer for a secret, decoded once rather than on every attempt."""
    return Webhook(secret)
