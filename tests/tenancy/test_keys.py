"""API keys: stored hashed, named by any of the dialects' header forms."""

from __future__ import annotations

import hashlib

import pytest

from reachout.tenancy.keys import hash_secret, key_from_headers, visible_prefix


def test_the_stored_form_is_sha256_hex() -> None:
    assert hash_secret("rk_live_abc") == hashlib.sha256(b"rk_live_abc").hexdigest()


def test_the_visible_prefix_never_reveals_most_of_the_key() -> None:
    assert visible_prefix("rk_demo_key_123456") == "rk_dem"
    assert len(visible_prefix("short123")) <= len("short123") // 3


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"x-polyai-auth-token": "k1"}, "k1"),
        ({"authorization": "k2"}, "k2"),
        ({"authorization": "Bearer k3"}, "k3"),
        ({"authorization": "bearer   k4  "}, "k4"),
        ({"x-polyai-auth-token": "k5", "authorization": "Bearer other"}, "k5"),
        ({"authorization": "Bearer"}, "Bearer"),
        ({"authorization": ""}, None),
        ({}, None),
    ],
)
def test_key_from_headers(headers: dict[str, str], key: str | None) -> None:
    assert key_from_headers(headers) == key
