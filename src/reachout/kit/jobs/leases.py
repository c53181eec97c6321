"""A lease: one worker's hold on claimed rows, until it expires or the rows are claimed again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import uuid_utils

TOKEN_OWNER_CHARS = 40


@dataclass(frozen=True)
class Lease:
    """What a claim stamps on its rows. The token is new for every claim, so a result write that finds its
    token gone knows the lease ended (expired and claimed again, or the row moved) and changes nothing."""

    token: str
    owner: str  # the worker, for logs and audit
    until: datetime

    @classmethod
    def take(cls, owner: str, until: datetime) -> Lease:
        """A new lease for `owner` until `until`."""
        return cls(f"{owner[:TOKEN_OWNER_CHARS]}/{uuid_utils.uuid7().hex[-12:]}", owner, until)
