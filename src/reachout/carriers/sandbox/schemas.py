"""The sandbox's HTTP shapes (DESIGN.md, "Sandbox carrier")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HandsetDirection(StrEnum):
    TO_HANDSET = "to_handset"
    FROM_HANDSET = "from_handset"


class InboundRequest(BaseModel):
    """A virtual handset texting an agent number."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=40)
    to: str = Field(min_length=1, max_length=40)
    body: str = Field(min_length=1, max_length=1600)

    @field_validator("body")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL (U+0000) characters")
        return value


class InboundAccepted(BaseModel):
    sid: str


class HandsetMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    direction: HandsetDirection
    from_: str = Field(alias="from")
    to: str
    body: str
    at: datetime
