"""Choosing the sender for a recipient (pure): the number they last heard from, else a stable spread.

Rendezvous hashing gives each recipient a stable favourite among the candidates, so first contacts spread
evenly over a project's numbers, and a recipient's choice moves only if their number goes away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _weight(recipient: str, sender: str) -> bytes:
    return hashlib.blake2b(f"{recipient}|{sender}".encode(), digest_size=8).digest()


def choose_sender(recipient: str, candidates: Sequence[str], previous: str | None = None) -> str | None:
    """The sender for `recipient`: `previous` while it is still a candidate, else its rendezvous favourite."""
    if not candidates:
        return None
    if previous is not None and previous in candidates:
        return previous
    return max(candidates, key=lambda sender: _weight(recipient, sender))
