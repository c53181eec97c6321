"""A project's conversation settings: what its sessions do after a timeout, its inactivity timers, and the
texts reachout sends on its behalf (keyword answers, the agent's fallback). Set in the provisioning file under
a project's `conversations:` key; every field has a default, so a project may leave it out."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

# Twilio's default answers to the opt-out, opt-in and help keywords, which users of US carriers expect.
OPT_OUT_TEXT = (
    "You have successfully been unsubscribed. You will not receive any more messages from this number. "
    "Reply START to resubscribe."
)
OPT_IN_TEXT = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)
HELP_TEXT = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
FALLBACK_TEXT = "Sorry, we can't reply right now. A member of our team will get back to you soon."
WARNING_TEXT = "Are you still there? Reply within 10 minutes to keep this conversation open."


class AfterTimeout(StrEnum):
    """What a text does when it arrives after the person's conversation timed out or ended."""

    NEW_SESSION = "new_session"  # it opens a new conversation, which the agent answers
    STORE_ONLY = "store_only"  # it is stored, unanswered


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InactivitySettings(_Settings):
    """PolyAI's rule: once the person has replied, a warning after this long without activity; then an end."""

    warn_after_seconds: PositiveFloat = 24 * 3600.0
    end_after_warning_seconds: PositiveFloat = 600.0
    warning_message: str = Field(default=WARNING_TEXT, min_length=1, max_length=1600)
    timeout_message: str | None = Field(default=None, min_length=1, max_length=1600)


class ConversationSettings(_Settings):
    """Everything per project that shapes its conversations."""

    after_timeout: AfterTimeout = AfterTimeout.NEW_SESSION
    inactivity: InactivitySettings = Field(default_factory=InactivitySettings)
    opt_out_text: str = Field(default=OPT_OUT_TEXT, min_length=1, max_length=1600)
    opt_in_text: str = Field(default=OPT_IN_TEXT, min_length=1, max_length=1600)
    help_text: str = Field(default=HELP_TEXT, min_length=1, max_length=1600)
    fallback_text: str = Field(default=FALLBACK_TEXT, min_length=1, max_length=1600)

    @model_validator(mode="after")
    def _texts_are_not_blank(self) -> ConversationSettings:
        for name in ("opt_out_text", "opt_in_text", "help_text", "fallback_text"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be blank")
        return self
