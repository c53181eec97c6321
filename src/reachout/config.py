"""Settings, read from REACHOUT_* environment variables; built once at start-up, never at import time."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reachout.phones.numbers import is_region


class LineTypeSource(StrEnum):
    """Which line-type lookup the send gates ask."""

    SANDBOX = "sandbox"
    TWILIO = "twilio"


class SandboxRoutes(StrEnum):
    """When the sandbox's HTTP routes (`/sandbox/*`) are served."""

    AUTO = "auto"  # while some provisioned number uses the sandbox carrier
    ON = "on"  # always (a development server provisioned later, say)
    OFF = "off"  # never


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Settings(BaseSettings):
    """Everything an operator can tune; each field is `REACHOUT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="REACHOUT_", frozen=True, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./reachout.db"
    config: Path | None = Field(default=None, description="Provisioning file applied at start-up.")
    public_url: str = "http://127.0.0.1:8080"

    # Twilio: with both set, numbers provisioned with `carrier: twilio` send through this account, and
    # Twilio's webhooks are served. The token is a secret: never logged, never shown.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base_url: str | None = None  # default https://api.twilio.com
    # A send Twilio has not answered by then has an unknown outcome, settled with `find` before any re-send.
    twilio_timeout_seconds: float = Field(default=10.0, gt=0)
    twilio_lookup_base_url: str | None = None  # default https://lookups.twilio.com
    # Who tells a mobile from a landline where libphonenumber cannot (North America): the sandbox's rules,
    # or Twilio Lookup v2 (paid per lookup; answers kept for 30 days per number).
    line_type_lookup: LineTypeSource = LineTypeSource.SANDBOX
    # info: start-up, one line per request and per step of a message; debug adds claims, pacing and retries.
    log_level: str = "info"
    log_json: bool = Field(default=False, description="One JSON object per line instead of console lines.")

    max_body_bytes: int = Field(default=1_048_576, gt=0, description="Larger request bodies get 413.")
    # An oversized body is read and thrown away up to this many bytes before the 413 is sent, so a client that
    # writes its whole body before reading (urllib, requests) sees the 413 instead of a connection reset.
    max_discarded_body_bytes: int = Field(default=64 * 1_048_576, ge=0)

    # What one client can make `reachout serve` hold, and for how long (a proxy in front may bound more).
    http_max_header_bytes: int = Field(
        default=16_384, ge=1024, description="Request line and headers past this get 431 and a close."
    )
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request's line and headers must all arrive within this."
    )
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="The longest wait for the next piece of a request body."
    )
    http_keep_alive_seconds: float = Field(default=5.0, gt=0, description="An idle connection's lifetime.")
    http_max_connections: int = Field(
        default=1000, gt=0, description="Open connections past this are answered 503 and closed."
    )
    tenancy_cache_seconds: float = Field(
        default=2.0, ge=0, description="How long an API key or project lookup is reused before re-reading."
    )
    group_commit_max_batch: int = Field(default=512, gt=0)
    metrics_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long /metrics reuses the gauges it read from the database."
    )

    worker_poll_seconds: float = Field(default=0.2, gt=0)
    # After a pass that drained its queue, how long a runner lets new work gather before its next pass.
    worker_linger_seconds: float = Field(default=0.02, ge=0)
    dispatch_batch_size: int = Field(default=200, gt=0)
    dispatch_concurrency: int = Field(default=64, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0, description="A claim older than this is re-claimable.")
    # How far ahead a paced sender's next slot may be for the dispatcher to claim it and wait for it. Longer
    # than the poll interval, so a busy sender's next message is claimed before its slot and sent on time.
    pacing_horizon_seconds: float = Field(default=0.5, ge=0.1)
    # A send the carrier could not take is retried with exponential backoff from retry_base_seconds, capped
    # at retry_cap_seconds, less a random share of up to retry_jitter (a carrier's Retry-After is honoured).
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_attempts: int = Field(default=8, gt=0)
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    retry_jitter: float = Field(default=0.2, ge=0, le=1)

    # Conversations: texts arriving within the debounce window are answered as one turn; an agent gets
    # agent_timeout_seconds per turn and agent_max_attempts tries before the project's fallback text is sent.
    debounce_seconds: float = Field(default=2.0, ge=0)
    agent_timeout_seconds: float = Field(default=10.0, gt=0)
    agent_max_attempts: int = Field(default=3, gt=0)
    agent_retry_base_seconds: float = Field(default=2.0, gt=0)
    agent_retry_cap_seconds: float = Field(default=60.0, gt=0)
    turn_batch_size: int = Field(default=20, gt=0)
    turn_concurrency: int = Field(default=10, gt=0, description="Agent turns one worker works at once.")

    # Keyword answers (HELP, and the STOP and START confirmations) and agent fallbacks: at most one of each
    # kind per person and project within this window, however many texts ask for them.
    auto_reply_window_seconds: float = Field(default=600.0, ge=0)

    # Customers' webhooks (Standard Webhooks): each attempt gets webhooks_timeout_seconds; an endpoint whose
    # every attempt has failed for webhooks_disable_after_seconds is disabled until an operator enables it.
    webhooks_timeout_seconds: float = Field(default=15.0, gt=0)
    webhooks_disable_after_seconds: float = Field(default=5 * 86_400.0, gt=0)
    webhooks_allow_private: bool = Field(
        default=False,
        description="Let webhooks reach loopback, private and link-local addresses (development, tests, a "
        "private network).",
    )
    webhooks_retry_schedule_seconds: tuple[float, ...] = Field(
        default=(0.0, 5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 36_000.0),
        min_length=1,
        description="The delay before each attempt (the first: after the event), each ± 20 %; a JSON list.",
    )
    webhooks_batch_size: int = Field(default=200, gt=0)
    webhooks_concurrency: int = Field(default=128, gt=0, description="Deliveries one worker makes at once.")
    webhooks_endpoint_concurrency: int = Field(
        default=16, gt=0, description="Deliveries one worker makes to one endpoint at once."
    )

    sandbox_routes: SandboxRoutes = SandboxRoutes.AUTO
    sandbox_sent_after_seconds: float = Field(default=0.05, ge=0)
    sandbox_delivered_after_seconds: float = Field(default=0.25, ge=0)
    # Countries (ISO codes) whose sandbox routes send no delivery receipt: their texts stop at `sent`.
    sandbox_routes_without_receipts: frozenset[str] = frozenset()

    @field_validator("webhooks_retry_schedule_seconds")
    @classmethod
    def _schedule(cls, delays: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in delays):
            raise ValueError("a webhook retry delay cannot be negative")
        return delays

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, level: str) -> str:
        if level.lower() not in LOG_LEVELS:
            raise ValueError(f"not a log level: use one of {', '.join(LOG_LEVELS)}")
        return level.lower()

    @field_validator("sandbox_routes_without_receipts")
    @classmethod
    def _countries(cls, codes: frozenset[str]) -> frozenset[str]:
        unknown = sorted(code for code in codes if not is_region(code))
        if unknown:
            raise ValueError(f"not ISO 3166-1 alpha-2 country codes: {', '.join(unknown)}")
        return codes
