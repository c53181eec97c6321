"""The provisioning file (DESIGN.md, "Provisioning file") as Pydantic models that reject unknown keys."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from reachout.agents.base import AgentError
from reachout.agents.pathway import PathwaySpec
from reachout.agents.registry import kind_of
from reachout.carriers.base import CarrierKind
from reachout.events.signing import check_secret
from reachout.events.types import UnknownEventFilter, check_filter
from reachout.phones.numbers import InvalidPhoneNumber, is_region, parse_e164
from reachout.tenancy.enums import (
    BrandStatus,
    CampaignStatus,
    Capability,
    Environment,
    NumberKind,
    UseCaseReplies,
)
from reachout.tenancy.settings import ConversationSettings

IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitSpec(_Strict):
    requests: PositiveInt = 60
    per_seconds: PositiveFloat = 60.0


class WebhookSpec(_Strict):
    url: str = Field(min_length=1)
    secret: str | None = None


class WebhookEndpointSpec(_Strict):
    """A Standard Webhooks endpoint of the project: every event it wants, signed with its secret(s)."""

    url: str = Field(min_length=1, max_length=2048)
    secret: str | list[str] = Field(
        description="`whsec_` + base64 (24 bytes or more); a list while rotating: the first signs, and "
        "during the rotation each one signs."
    )
    events: list[str] = Field(
        default_factory=list, description="Event types or families (`message.*`); empty: every event."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)  # what will send to it must be able to read it
        except httpx.InvalidURL as error:
            raise ValueError(f"a webhook url must be a valid URL: {error}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("a webhook url must be an absolute http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _secrets(cls, value: str | list[str]) -> str | list[str]:
        secrets = [value] if isinstance(value, str) else value
        if not secrets:
            raise ValueError("a webhook needs at least one secret")
        for secret in secrets:
            check_secret(secret)
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, patterns: list[str]) -> list[str]:
        try:
            return list(check_filter(patterns))
        except UnknownEventFilter as error:
            raise ValueError(str(error)) from None

    @property
    def secrets(self) -> list[str]:
        """Every secret, the signing one first."""
        return [self.secret] if isinstance(self.secret, str) else list(self.secret)


class NumberSpec(_Strict):
    number: str
    carrier: CarrierKind = CarrierKind.SANDBOX
    kind: NumberKind = NumberKind.LONG_CODE
    capabilities: list[Capability] = Field(default_factory=lambda: [Capability.SMS])
    environment: Environment | None = Field(default=None, description="Defaults to the project's.")
    throughput_mps: PositiveFloat | Literal["unlimited"] | None = Field(
        default=None,
        description="Message segments per second; defaults to the kind's rate (unlimited on the sandbox).",
    )
    brand: str | None = Field(default=None, pattern=IDENTIFIER, description="One of the account's brands.")

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            return parse_e164(value).e164
        except InvalidPhoneNumber as error:
            raise ValueError(str(error)) from None


class UseCaseSpec(_Strict):
    """An SMS use case (reference page of `POST /v1/sms/`): a sender pool, routing policies, registrations."""

    id: UUID
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    sender_pool: list[str] = Field(default_factory=list)
    sticky_sender: bool = True
    area_code_geomatch: bool = True
    campaign: CampaignStatus | None = Field(default=None, description="A2P 10DLC; None: no campaign.")
    brand: BrandStatus = BrandStatus.VERIFIED
    allowed_countries: list[str] | None = Field(
        default=None, description="ISO 3166-1 alpha-2; defaults to the countries of the pool's numbers."
    )
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    quiet_hours: bool | None = Field(
        default=None,
        description="Hold first messages until 08:00-21:00 recipient time; None: as the project.",
    )
    replies: Literal["none", "project"] | dict[str, Any] = Field(
        default="none",
        description="What answers a reply to its messages: none (stored, an event says so), the project's "
        "agent, or an agent setting of its own such as {pathway: ID}.",
    )

    @field_validator("replies", mode="before")
    @classmethod
    def _replies(cls, value: object) -> object:
        if isinstance(value, dict):
            try:
                kind_of(value)
            except AgentError as error:
                raise ValueError(str(error)) from None
        elif value not in ("none", "project"):
            raise ValueError("must be none, project, or an agent setting such as {pathway: ID}")
        return value

    @property
    def answered_by(self) -> UseCaseReplies:
        """What answers replies to its messages."""
        return UseCaseReplies.OWN if isinstance(self.replies, dict) else UseCaseReplies(self.replies)

    @field_validator("sender_pool")
    @classmethod
    def _pool_e164(cls, numbers: list[str]) -> list[str]:
        canonical = []
        for value in numbers:
            try:
                canonical.append(parse_e164(value).e164)
            except InvalidPhoneNumber as error:
                raise ValueError(str(error)) from None
        return canonical

    @field_validator("allowed_countries")
    @classmethod
    def _regions(cls, codes: list[str] | None) -> list[str] | None:
        if codes is None:
            return None
        unknown = [code for code in codes if not is_region(code)]
        if unknown:
            raise ValueError(f"not ISO 3166-1 alpha-2 country codes: {', '.join(unknown)}")
        return codes


class TwilioProjectSpec(_Strict):
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")


class ProjectSpec(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    connector_id: str | None = Field(default=None, min_length=1, max_length=128)
    environment: Environment = Environment.LIVE
    rate_limit: RateLimitSpec = Field(default_factory=RateLimitSpec)
    agent: dict[str, Any] = Field(default_factory=dict)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    webhook: WebhookSpec | None = None
    webhooks: list[WebhookEndpointSpec] = Field(
        default_factory=list, description="Standard Webhooks endpoints told of the project's events."
    )
    numbers: list[NumberSpec] = Field(default_factory=list)
    twilio: TwilioProjectSpec = Field(default_factory=TwilioProjectSpec)
    use_cases: list[UseCaseSpec] = Field(default_factory=list)
    quiet_hours: bool = Field(
        default=False, description="Hold first messages until 08:00-21:00 in the recipient's time zone."
    )

    @model_validator(mode="after")
    def _numbers_unique(self) -> ProjectSpec:
        _unique("number", [(("numbers", i, "number"), n.number) for i, n in enumerate(self.numbers)])
        _unique("webhook url", [(("webhooks", i, "url"), w.url) for i, w in enumerate(self.webhooks)])
        own = {n.number for n in self.numbers}
        for u, use_case in enumerate(self.use_cases):
            for n, number in enumerate(use_case.sender_pool):
                if number not in own:
                    raise UnknownReference(
                        f"{number} is not one of this project's numbers", ("use_cases", u, "sender_pool", n)
                    )
            if use_case.answered_by is UseCaseReplies.PROJECT and not self.agent:
                raise MisplacedEntry(
                    "'project' needs the project's agent, and this project has none",
                    ("use_cases", u, "replies"),
                )
        return self


class BrandSpec(_Strict):
    """A 10DLC brand: every number sending for it shares its throughput cap."""

    id: str = Field(pattern=IDENTIFIER)
    throughput_mps: PositiveFloat


class AccountSpec(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    name: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    brands: list[BrandSpec] = Field(default_factory=list)
    projects: list[ProjectSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _brands_known(self) -> AccountSpec:
        _unique("brand id", [(("brands", i, "id"), b.id) for i, b in enumerate(self.brands)])
        known = {b.id for b in self.brands}
        for p, project in enumerate(self.projects):
            for n, number in enumerate(project.numbers):
                if number.brand is not None and number.brand not in known:
                    raise UnknownReference(
                        f"brand '{number.brand}' is not one of this account's brands",
                        ("projects", p, "numbers", n, "brand"),
                    )
        return self

    def brand_throughput(self, brand: str | None) -> float | None:
        """The cap of one of this account's brands (None for no brand)."""
        return next((b.throughput_mps for b in self.brands if b.id == brand), None)

    @field_validator("api_keys")
    @classmethod
    def _keys_strong_enough(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if len(key) < 8:
                raise ValueError("an API key must be at least 8 characters long")
        return keys


class TwilioCredentials(_Strict):
    """The Twilio account numbers with `carrier: twilio` send through (REACHOUT_TWILIO_* take precedence)."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = Field(min_length=1)
    api_base_url: str | None = None


class CarriersSpec(_Strict):
    twilio: TwilioCredentials | None = None


class ProvisioningFile(_Strict):
    accounts: list[AccountSpec] = Field(default_factory=list)
    pathways: list[PathwaySpec] = Field(default_factory=list)
    carriers: CarriersSpec = Field(default_factory=CarriersSpec)

    @model_validator(mode="after")
    def _ids_unique(self) -> ProvisioningFile:
        accounts = list(enumerate(self.accounts))
        projects = [(a, p, project) for a, account in accounts for p, project in enumerate(account.projects)]
        _unique("account id", [(("accounts", a, "id"), account.id) for a, account in accounts])
        _unique("project id", [(("accounts", a, "projects", p, "id"), pr.id) for a, p, pr in projects])
        _unique(
            "connector_id",
            [
                (("accounts", a, "projects", p, "connector_id"), pr.connector_id)
                for a, p, pr in projects
                if pr.connector_id
            ],
        )
        _unique(
            "number",
            [
                (("accounts", a, "projects", p, "numbers", n, "number"), number.number)
                for a, p, pr in projects
                for n, number in enumerate(pr.numbers)
            ],
        )
        _unique(
            "use case id",
            [
                (("accounts", a, "projects", p, "use_cases", u, "id"), str(use_case.id))
                for a, p, pr in projects
                for u, use_case in enumerate(pr.use_cases)
            ],
        )
        _unique(
            "API key",
            [
                (("accounts", a, "api_keys", k), key)
                for a, acc in accounts
                for k, key in enumerate(acc.api_keys)
            ],
        )
        return self


class MisplacedEntry(ValueError):
    """An entry a validator refused; `location` is its path, relative to the validated model."""

    def __init__(self, message: str, location: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.location = location


class DuplicateEntry(MisplacedEntry):
    """A value listed twice; `location` is the path of its second listing."""


class UnknownReference(MisplacedEntry):
    """A name that refers to nothing defined where it should be."""


def _unique(what: str, entries: list[tuple[tuple[int | str, ...], str]]) -> None:
    seen: set[str] = set()
    for location, value in entries:
        if value in seen:
            shown = value if what != "API key" else value[:4] + "…"
            raise DuplicateEntry(f"{what} '{shown}' appears more than once", location)
        seen.add(value)
