"""The official `twilio` library's asynchronous client, as the carrier and the lookup both use it."""

from __future__ import annotations

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client


class LazyTwilioClient:
    """A `Client` built on first use, as the library's HTTP session must be created inside the running event
    loop. `api_base_url` and `lookup_base_url` replace https://api.twilio.com and https://lookups.twilio.com."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str | None = None,
        lookup_base_url: str | None = None,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_base_url = api_base_url
        self._lookup_base_url = lookup_base_url
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    def __repr__(self) -> str:  # the auth token never reaches a log line
        return f"LazyTwilioClient(account_sid={self._account_sid!r})"

    def get(self) -> Client:
        """The client, built now if it was not yet."""
        if self._client is None:
            self._http = AsyncTwilioHttpClient()
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
            if self._api_base_url is not None:
                self._client.api.base_url = self._api_base_url.rstrip("/")
            if self._lookup_base_url is not None:
                self._client.lookups.base_url = self._lookup_base_url.rstrip("/")
        return self._client

    async def close(self) -> None:
        """Close the HTTP session; a later `get` builds a new one."""
        if self._http is not None and self._http.session is not None:
            await self._http.session.close()
        self._client = self._http = None
