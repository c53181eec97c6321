"""API key secrets: only their SHA-256 is stored, plus a short prefix so people can tell keys apart."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

VISIBLE_PREFIX_LENGTH = 8
# A key others can guess: too short to resist guessing, or published (demo.yaml's, printed by `make run`).
MIN_STRONG_KEY_LENGTH = 20
WELL_KNOWN_KEYS = frozenset({"rk_demo_key_123456"})


def hash_secret(secret: str) -> str:
    """The stored form of an API key secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def visible_prefix(secret: str) -> str:
    """The part of a key that may be shown back to people (never enough to use it)."""
    return secret[: min(VISIBLE_PREFIX_LENGTH, len(secret) // 3)]


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a request names, in any of the forms the dialects accept.

    `X-PolyAi-Auth-Token: KEY`, `authorization: KEY` (Bland) and `Authorization: Bearer KEY` all work on
    every dialect, so a client that moves between them keeps its credentials.
    """
    token = headers.get("x-polyai-auth-token")
    if token:
        return token.strip()
    authorization = (headers.get("authorization") or "").strip()
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return authorization or None


def weakness(secret: str) -> str | None:
    """Why a key should not be served where others can reach the server, or None for a strong one."""
    if secret in WELL_KNOWN_KEYS:
        return "it is the demo's well-known key"
    if len(secret) < MIN_STRONG_KEY_LENGTH:
        return f"it is shorter than {MIN_STRONG_KEY_LENGTH} characters"
    return None
