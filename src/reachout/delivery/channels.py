"""The channels a text travels on."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How a text reaches a person; a message, a conversation and a carrier's address all name one."""

    SMS = "sms"
    WHATSAPP = "whatsapp"
