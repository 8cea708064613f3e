"""How the gateway authenticates to the core-banking backend.

Two ways, chosen by the ``bank_auth`` setting (docs/bank-integration.md#authentication):

- ``mtls``: a client certificate on the TLS connection (RFC 8446 §4.4.2) — configured on the
  `httpx.Client` itself, nothing to do per request;
- ``client_credentials``: an OAuth 2.0 access token (RFC 6749 §4.4) sent as a bearer token
  (RFC 6750 §2.1). `ClientCredentials` fetches it from the token endpoint, caches it and
  fetches a new one before it expires (``refresh_margin`` seconds early, so a token never
  expires in flight); a 401 from the backend drops it (`invalidate`). One lock serialises the
  fetch, so a burst of calls at expiry asks for one token, not one each.

The token endpoint is reached through the same transport (same CA, same client certificate
if any) and within the calling request's time budget; a failure is a `BankUnavailable` /
`BankTimeout` like any other backend failure.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stetgate.bank.failures import BankFailure, BankUnavailable
from stetgate.bank_http.transport import BankRequest, BankTransport


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int | None = Field(None, ge=1)


class ClientCredentials:
    """A cached OAuth 2.0 client-credentials token (client_secret_basic, RFC 6749 §2.3.1)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        refresh_margin: float = 30.0,
        default_lifetime: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        # RFC 6749 §2.3.1: each part form-encoded before the Basic scheme (RFC 7617).
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        self._basic = "Basic " + base64.b64encode(pair).decode("ascii")
        self.scope = scope
        self.refresh_margin = refresh_margin
        self.default_lifetime = default_lifetime
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._valid_until = 0.0
        self.fetched = 0
        """How many tokens were fetched (tests, metrics)."""

    def authorization(self, transport: BankTransport, timeout: float) -> str:
        """The ``Authorization`` header value, fetching a token when none is fresh."""
        with self._lock:
            if self._token is None or self._monotonic() >= self._valid_until:
                self._fetch(transport, timeout)
            assert self._token is not None
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self, transport: BankTransport, timeout: float) -> None:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        started = self._monotonic()
        headers = {
            "Authorization": self._basic,
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        request = BankRequest("POST", self.token_url, headers, urlencode(form).encode("ascii"))
        try:
            response = transport.send(request, timeout)
        except BankFailure as failure:
            raise type(failure)(f"token endpoint: {failure.reason}") from None
        if response.status != 200:
            raise BankUnavailable(f"token endpoint: HTTP {response.status}")
        try:
            answer = _TokenAnswer.model_validate_json(response.content)
        except ValidationError:
            raise BankUnavailable("token endpoint: invalid answer") from None
        if answer.token_type.lower() != "bearer":
            raise BankUnavailable("token endpoint: not a bearer token")
        lifetime = float(answer.expires_in or self.default_lifetime)
        self._token = answer.access_token
        self._valid_until = started + max(lifetime - self.refresh_margin, lifetime / 2)
        self.fetched += 1


__all__ = ["ClientCredentials"]
