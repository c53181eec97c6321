"""The closed vocabularies of tenancy."""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    """Which stage a project (and each of its numbers) serves; a connector token picks one."""

    SANDBOX = "sandbox"
    PRE_RELEASE = "pre-release"
    LIVE = "live"


class NumberKind(StrEnum):
    """What kind of sender a number is; its default throughput follows from it."""

    LONG_CODE = "long_code"
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"


class Capability(StrEnum):
    """What a number can be used for."""

    SMS = "sms"
    MMS = "mms"
    VOICE = "voice"
    WHATSAPP = "whatsapp"


class CampaignStatus(StrEnum):
    """Where a use case's A2P 10DLC campaign stands; US long codes may send only under a verified one."""

    VERIFIED = "verified"
    PENDING = "pending"
    REJECTED = "rejected"


class BrandStatus(StrEnum):
    """Where the brand registration behind a use case stands; a suspended brand sends nothing."""

    VERIFIED = "verified"
    SUSPENDED = "suspended"


class UseCaseReplies(StrEnum):
    """What answers a person's reply to a use case's message."""

    NONE = "none"  # nobody: the reply is stored and a conversation event says it came
    PROJECT = "project"  # the project's agent
    OWN = "own"  # the use case's own agent


# Carrier-published message segments per second for each kind of US sender.
DEFAULT_THROUGHPUT: dict[NumberKind, float] = {
    NumberKind.LONG_CODE: 1.0,
    NumberKind.TOLL_FREE: 3.0,
    NumberKind.SHORT_CODE: 100.0,
}
