"""The bank's OpenID Provider seen from stetgate: discovery, signing keys, token endpoint.

- Discovery (OpenID Connect Discovery 1.0 §4): ``{issuer}/.well-known/openid-configuration``,
  fetched once and kept for `DISCOVERY_TTL_SECONDS`; its ``issuer`` must be the configured one
  exactly (§4.3), else nothing from it is used.
- Keys (OIDC Core §10.1.1): the ``jwks_uri`` key set is kept until an ID token names a ``kid``
  it does not hold — the OP rotated its keys — and then fetched again; such refetches happen
  at most once per ``oidc_jwks_refetch_seconds``, so that tokens with made-up ``kid`` values
  cannot make stetgate hammer the OP. That throttle is an operational rate limit, not a rule
  about the PSU, so it uses a monotonic timer rather than the app's (injectable) clock.
- Token request (OIDC Core §3.1.3.1, RFC 7636 §4.5): the code, the redirect URI and the PKCE
  verifier, with the client authentication the OP registered (§9: client_secret_basic,
  client_secret_post or private_key_jwt).

Every call is blocking (httpx's sync client, with timeouts): callers run it off the event loop
(`stetgate.serving.blocking`). One client per worker, made on first use and kept: building an
httpx client loads the CA bundle into a new TLS context, ~20 ms of CPU per login (about what
the rest of a delegated login costs stetgate, docs/performance-notes.md), and a kept client
reuses its connections to the OP. Failures raise `ProviderError`, whose text names what
failed without echoing secrets.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey, import_key

from stetgate.secrets import new_secret
from stetgate.settings import Settings

DISCOVERY_TTL_SECONDS = 3600.0
CLIENT_ASSERTION_SECONDS = 60


class ProviderError(Exception):
    """The OP could not be reached or answered something unusable."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    authorization_response_iss_parameter_supported: bool


class OpenIdProvider:
    """One OP, shared by the requests of a worker (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self._settings = settings
        self._lock = threading.Lock()
        self._discovery: Discovery | None = None
        self._discovered_at = 0.0
        self._keys: KeySet | None = None
        self._last_refetch: float | None = None
        """When a missing ``kid`` last caused a refetch (monotonic seconds)."""
        self._signing_key: RSAKey | None = None
        self.jwks_fetches = 0
        """How many times the key set was fetched (tests and diagnostics)."""
        self._client: httpx.Client | None = None

    # --- HTTP -------------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        """The worker's client (httpx's sync client is thread-safe), made on first use."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    ca = self._settings.oidc_ca_file
                    self._client = httpx.Client(
                        timeout=self._settings.oidc_http_timeout_seconds,
                        verify=str(ca) if ca is not None else True,
                        follow_redirects=False,
                        trust_env=False,
                    )
                client = self._client
        return client

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http().get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(f"GET {url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ProviderError(f"GET {url}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(f"GET {url}: not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderError(f"GET {url}: not a JSON object")
        return body

    # --- discovery --------------------------------------------------------------------------
    def discovery(self) -> Discovery:
        with self._lock:
            fresh = time.monotonic() - self._discovered_at < DISCOVERY_TTL_SECONDS
            if self._discovery is not None and fresh:
                return self._discovery
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        body = self._get_json(url)
        if body.get("issuer") != self.issuer:
            # Discovery §4.3: the issuer in the document must be the one it was fetched for.
            raise ProviderError("discovery: issuer does not match oidc_issuer")
        try:
            found = Discovery(
                issuer=body["issuer"],
                authorization_endpoint=str(body["authorization_endpoint"]),
                token_endpoint=str(body["token_endpoint"]),
                jwks_uri=str(body["jwks_uri"]),
                authorization_response_iss_parameter_supported=bool(
                    body.get("authorization_response_iss_parameter_supported", False)
                ),
            )
        except KeyError as exc:
            raise ProviderError(f"discovery: {exc.args[0]} missing") from exc
        with self._lock:
            self._discovery = found
            self._discovered_at = time.monotonic()
        return found

    # --- keys -------------------------------------------------------------------------------
    def _fetch_keys(self) -> KeySet:
        body = self._get_json(self.discovery().jwks_uri)
        try:
            keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except Exception as exc:  # joserfc raises several types for a malformed set
            raise ProviderError(f"jwks: unusable key set ({type(exc).__name__})") from exc
        with self._lock:
            self._keys = keys
            self.jwks_fetches += 1
        return keys

    def keys_for(self, kid: str | None) -> KeySet:
        """The OP's key set, fetched again once when it lacks ``kid`` (key rotation), unless
        the last fetch is more recent than ``oidc_jwks_refetch_seconds``."""
        with self._lock:
            keys, last_refetch = self._keys, self._last_refetch
        if keys is None:
            return self._fetch_keys()
        if kid is None or any(key.kid == kid for key in keys.keys):
            return keys
        now = time.monotonic()
        if (
            last_refetch is not None
            and now - last_refetch < self._settings.oidc_jwks_refetch_seconds
        ):
            return keys  # refetched for a missing kid lately: the token's kid is not the OP's
        with self._lock:
            self._last_refetch = now
        return self._fetch_keys()

    # --- token endpoint ---------------------------------------------------------------------
    def exchange_code(
        self, code: str, *, redirect_uri: str, code_verifier: str, now: datetime
    ) -> dict[str, Any]:
        """POST the code to the token endpoint; returns its JSON answer (with ``id_token``)."""
        token_endpoint = self.discovery().token_endpoint
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        settings = self._settings
        if settings.oidc_client_auth == "client_secret_basic":
            assert settings.oidc_client_secret is not None
            # RFC 6749 §2.3.1: both parts form-urlencoded before Basic (httpx does not).
            auth = httpx.BasicAuth(
                quote(self.client_id, safe=""), quote(settings.oidc_client_secret, safe="")
            )
        elif settings.oidc_client_auth == "client_secret_post":
            assert settings.oidc_client_secret is not None
            form["client_id"] = self.client_id
            form["client_secret"] = settings.oidc_client_secret
        else:
            form["client_id"] = self.client_id
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = self._client_assertion(token_endpoint, now)
        try:
            http = self._http()
            if auth is None:
                response = http.post(token_endpoint, data=form)
            else:
                response = http.post(token_endpoint, data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise ProviderError(f"token endpoint: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(f"token endpoint: HTTP {response.status_code}, not JSON") from exc
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise ProviderError(f"token endpoint: HTTP {response.status_code} {error or ''}")
        if not isinstance(body.get("id_token"), str):
            raise ProviderError("token endpoint: no id_token in the answer")
        return body

    def _client_assertion(self, audience: str, now: datetime) -> str:
        """private_key_jwt (OIDC Core §9): a short JWT signed with the client's key."""
        settings = self._settings
        if self._signing_key is None:
            path: Path | None = settings.oidc_private_key_file
            assert path is not None
            key = import_key(path.read_bytes(), "RSA")
            self._signing_key = key
        issued = int(now.timestamp())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": new_secret(),
            "iat": issued,
            "exp": int((now + timedelta(seconds=CLIENT_ASSERTION_SECONDS)).timestamp()),
        }
        header: dict[str, Any] = {"alg": "RS256"}
        if settings.oidc_private_key_kid:
            header["kid"] = settings.oidc_private_key_kid
        return jwt.encode(header, claims, self._signing_key)
