"""Twilio as a carrier plugin: the Messages API behind the text port, its signed webhooks, and Lookup v2."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from reachout.carriers.base import CarrierKind
from reachout.carriers.plugin import CarrierContext, CarrierRoutes
from reachout.carriers.twilio.carrier import TwilioCarrier, TwilioSettings
from reachout.carriers.twilio.lookup import TwilioLookup
from reachout.carriers.twilio.webhooks import twilio_router
from reachout.config import Settings
from reachout.kit.jobs.runner import Runner
from reachout.logs import get_logger
from reachout.phones.lookup import LineTypeLookup
from reachout.phones.lookup_cache import CachedLookup

log = get_logger("twilio")


class TwilioPlugin:
    """A Twilio account as this process sends through it."""

    kind = CarrierKind.TWILIO

    def __init__(self, context: CarrierContext, settings: TwilioSettings) -> None:
        self.text = TwilioCarrier(settings)
        self._context = context
        self._lookup: CachedLookup | None = None

    def routes(self) -> Sequence[CarrierRoutes]:
        # Webhooks are signed with the token of the account the carrier sends through, wherever it came from.
        context, settings = self._context, self.text.settings
        router = twilio_router(
            context.database,
            context.events,
            context.clock,
            auth_token=settings.auth_token,
            public_url=settings.public_url,
        )
        return (CarrierRoutes(router),)

    def runners(self) -> Sequence[Runner]:
        return ()

    def line_type_lookup(self) -> LineTypeLookup:
        """Twilio Lookup, each paid answer kept (`line_type_answers`)."""
        if self._lookup is None:
            lookup = TwilioLookup(
                self.text.settings, lookup_base_url=self._context.settings.twilio_lookup_base_url
            )
            self._lookup = CachedLookup(lookup, self._context.database.write, self._context.clock)
        return self._lookup

    async def close(self) -> None:
        await self.text.close()
        if self._lookup is not None:
            await self._lookup.close()


def build(context: CarrierContext) -> TwilioPlugin | None:
    """Twilio, when REACHOUT_TWILIO_* (first) or the provisioning file name an account."""
    settings = twilio_settings(context.settings, context.provisioned.get(CarrierKind.TWILIO))
    return None if settings is None else TwilioPlugin(context, settings)


def twilio_settings(settings: Settings, provisioned: Mapping[str, Any] | None) -> TwilioSettings | None:
    """The account to send through: REACHOUT_TWILIO_*, else the provisioning file's `carriers.twilio`."""
    if settings.twilio_account_sid is not None and settings.twilio_auth_token is not None:
        account_sid, auth_token = settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()
        api_base_url, source = settings.twilio_api_base_url, "settings"
    elif provisioned is not None:
        token = provisioned["auth_token"]
        account_sid = str(provisioned["account_sid"])
        auth_token = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
        api_base_url = settings.twilio_api_base_url or provisioned.get("api_base_url")
        source = str(settings.config)
    else:
        return None
    log.info("Twilio carrier configured", account_sid=account_sid, source=source)
    return TwilioSettings(
        account_sid=account_sid,
        auth_token=auth_token,
        public_url=settings.public_url,
        api_base_url=api_base_url,
        timeout_seconds=settings.twilio_timeout_seconds,
    )
