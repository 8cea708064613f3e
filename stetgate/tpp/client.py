"""TPP-side client for any STET v1.4.2 bank: the "get your token" cinematic and the AISP/CBPII API.

What a TPP developer needs, nothing bank-specific (steps of docs/decisions.md#the-cinematic):
- step 2: build the ``GET /authorize`` URL (with ``state`` and optional PKCE);
- step 5: exchange the code at ``POST /token`` over mutual TLS with the QWAC (RFC 8705 §2);
- keep tokens alive: refresh before expiry (RFC 6749 §6), store what the bank returns (banks
  disagree on refresh-token rotation, docs/decisions.md#refresh), and know when a new SCA is
  needed;
- step 8: call the resource API with ``Authorization: Bearer``, ``X-Request-ID``, ``Digest`` and a
  draft-cavage ``Signature`` made with the QSealC (docs/decisions.md#http-signatures).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from stetgate.clock import Clock, SystemClock
from stetgate.httpsig import compute_digest, required_signed_headers, sign_request

TOKEN_PATH = "/stet/psd2/oauth/token"  # noqa: S105 - a path, not a secret
AUTHORIZE_PATH = "/stet/psd2/oauth/authorize"
REVOKE_PATH = "/stet/psd2/oauth/revoke"
API_BASE = "/stet/psd2/v1.4.2"
REGISTER_PATH = "/stet/setting/v1/register"
REGISTRATION_CLIENT_ID = "PSD2_TPPRegister"


@dataclass(frozen=True)
class BankProfile:
    """Where one bank puts the STET operations, and what it asks of the flow.

    STET v1.4.2 names the operations relative to a base each bank chooses; the defaults are
    BPCE's layout (stetgate's, docs/decisions.md#urls). ``use_pkce`` is the default of
    `StetBankClient.authorization_request`: PKCE (RFC 7636) protects the code even where a
    bank does not document it, but a bank that refuses unknown parameters needs it off.
    """

    authorize_path: str = AUTHORIZE_PATH
    token_path: str = TOKEN_PATH
    revoke_path: str = REVOKE_PATH
    api_base: str = API_BASE
    register_path: str = REGISTER_PATH
    registration_client_id: str = REGISTRATION_CLIENT_ID
    use_pkce: bool = True


BPCE = BankProfile()
"""BPCE's 89C3 layout, which stetgate follows."""


@dataclass(frozen=True)
class Registration:
    """What the register API answered (RFC 7591 §3.2.1): keep ``registration_access_token``,
    the bank shows it once and needs it to read, update or delete the registration."""

    client_id: str
    registration_access_token: str
    registration_client_uri: str
    metadata: dict[str, Any]

    @classmethod
    def from_response(
        cls, body: Mapping[str, Any], previous: Registration | None = None
    ) -> Registration:
        token = body.get("registration_access_token") or (
            previous.registration_access_token if previous else ""
        )
        return cls(
            client_id=str(body["client_id"]),
            registration_access_token=str(token),
            registration_client_uri=str(
                body.get("registration_client_uri")
                or (previous.registration_client_uri if previous else "")
            ),
            metadata=dict(body),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "registration_access_token": self.registration_access_token,
            "registration_client_uri": self.registration_client_uri,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Registration:
        return cls(
            str(data["client_id"]),
            str(data["registration_access_token"]),
            str(data["registration_client_uri"]),
            dict(data.get("metadata") or {}),
        )


class BankError(Exception):
    """The bank answered with an error (OAuth JSON, STET ErrorModel, or anything else)."""

    def __init__(
        self, status: int, body: Any, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        """Seconds from a ``Retry-After`` header (RFC 9110 §10.2.3; a 429 of the unattended
        limit carries one), None without a usable one."""

    @classmethod
    def from_response(cls, response: httpx.Response) -> BankError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        if isinstance(body, dict):
            detail = body.get("error_description") or body.get("message") or body.get("error")
        else:
            detail = body
        header = response.headers.get("Retry-After", "")
        retry_after = int(header) if header.isdigit() else None
        return cls(
            response.status_code,
            body,
            f"HTTP {response.status_code}: {detail}",
            retry_after=retry_after,
        )

    @property
    def oauth_error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class TppCredentials:
    """The TPP's eIDAS material: QWAC for mTLS, QSealC for signatures."""

    qwac_cert: Path
    qwac_key: Path
    qsealc_cert: Path
    qsealc_key: Path
    key_id: str | None = None
    """Signature keyId; default ``SN=<hex serial>,CA=<issuer DN>`` of the QSealC."""

    @classmethod
    def from_directory(cls, directory: Path, key_id: str | None = None) -> TppCredentials:
        """The layout `stetgate certs issue-tpp --out DIR` writes."""
        return cls(
            directory / "qwac.pem",
            directory / "qwac.key",
            directory / "qsealc.pem",
            directory / "qsealc.key",
            key_id,
        )

    def qsealc(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.qsealc_cert.read_bytes())

    def signing_key(self) -> RSAPrivateKey:
        key = serialization.load_pem_private_key(self.qsealc_key.read_bytes(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise TypeError("the QSealC key must be RSA (STET signs with rsa-sha256)")
        return key

    def default_key_id(self) -> str:
        cert = self.qsealc()
        return f"SN={cert.serial_number:x},CA={cert.issuer.rfc4514_string()}"


@dataclass
class TokenSet:
    """Tokens from one authorization, as the TPP must keep them (step 8 of
    docs/decisions.md#the-cinematic)."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str
    obtained_at: datetime = field(default_factory=lambda: SystemClock().now())

    @property
    def access_expires_at(self) -> datetime:
        return self.obtained_at + timedelta(seconds=self.expires_in)

    def needs_refresh(self, now: datetime, margin_seconds: int = 60) -> bool:
        return now >= self.access_expires_at - timedelta(seconds=margin_seconds)

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        previous: TokenSet | None = None,
        *,
        obtained_at: datetime | None = None,
    ) -> TokenSet:
        """Keep the old refresh token when the bank does not return one (BPCE returns the same
        one; a rotating bank returns a new one — either way store what you get)."""
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=refresh,
            expires_in=int(body.get("expires_in", 3600)),
            scope=str(body.get("scope", previous.scope if previous else "")),
            obtained_at=obtained_at or SystemClock().now(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "scope": self.scope,
            "obtained_at": self.obtained_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_in=int(data["expires_in"]),
            scope=data.get("scope", ""),
            obtained_at=datetime.fromisoformat(data["obtained_at"]),
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the TPP must remember between the redirect and the callback."""

    url: str
    state: str
    code_verifier: str | None
    redirect_uri: str
    scope: str


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class StetBankClient:
    """One TPP talking to one bank (one ``client_id`` at that bank; ``""`` before registering
    with `register`)."""

    def __init__(
        self,
        base_url: str,
        credentials: TppCredentials,
        client_id: str = "",
        *,
        ca_file: Path | None = None,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        profile: BankProfile = BPCE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.clock: Clock = clock or SystemClock()  # signed Date headers, tokens' obtained_at
        self.credentials = credentials
        self.client_id = client_id
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        context.load_cert_chain(str(credentials.qwac_cert), str(credentials.qwac_key))
        self._http = httpx.Client(
            base_url=self.base_url, verify=context, timeout=timeout, transport=transport
        )
        self._signing_key = credentials.signing_key()
        self._key_id = credentials.key_id or credentials.default_key_id()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StetBankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- OAuth --------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return self._json(self._http.get("/.well-known/oauth-authorization-server"))

    def authorization_request(
        self,
        scope: str,
        redirect_uri: str,
        *,
        use_pkce: bool | None = None,
        state: str | None = None,
    ) -> AuthorizationRequest:
        """Step 2 of the cinematic: the URL to send the PSU's browser to (STET Part I §3.4.3).
        PKCE follows the bank profile unless ``use_pkce`` says otherwise."""
        use_pkce = self.profile.use_pkce if use_pkce is None else use_pkce
        state = state or secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
        }
        verifier = None
        if use_pkce:
            verifier, challenge = pkce_pair()
            params.update(code_challenge=challenge, code_challenge_method="S256")
        url = f"{self.base_url}{self.profile.authorize_path}?{urlencode(params)}"
        return AuthorizationRequest(url, state, verifier, redirect_uri, scope)

    def exchange_code(
        self,
        request: AuthorizationRequest,
        callback_url: str,
        *,
        expected_issuer: str | None = None,
    ) -> TokenSet:
        """Steps 4-7 of the cinematic: check the callback (state, iss, error) and redeem the
        code."""
        from urllib.parse import parse_qs

        query = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        if not secrets.compare_digest(query.get("state", ""), request.state):
            raise BankError(400, query, "callback state does not match the request (CSRF?)")
        issuer = expected_issuer or self.base_url
        if "iss" in query and query["iss"] != issuer:
            raise BankError(400, query, f"callback iss {query['iss']!r} is not {issuer!r}")
        if "error" in query:
            raise BankError(
                400, query, f"{query['error']}: {query.get('error_description', '')}".strip()
            )
        if "code" not in query:
            raise BankError(400, query, "callback carries neither code nor error")
        form = {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": request.redirect_uri,
            "client_id": self.client_id,
        }
        if request.code_verifier:
            form["code_verifier"] = request.code_verifier
        body = self._json(self._http.post(self.profile.token_path, data=form))
        return TokenSet.from_response(body, obtained_at=self.clock.now())

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """RFC 6749 §6, without ``scope`` (BPCE). `invalid_grant` means a new SCA is needed."""
        if not tokens.refresh_token:
            raise BankError(400, None, "no refresh token: run the authorization again")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "client_id": self.client_id,
        }
        body = self._json(self._http.post(self.profile.token_path, data=form))
        return TokenSet.from_response(body, previous=tokens, obtained_at=self.clock.now())

    def ensure_fresh(self, tokens: TokenSet, margin_seconds: int = 60) -> TokenSet:
        """``tokens`` if the access token lives ``margin_seconds`` more, else refreshed ones
        (store what this returns: the bank may have rotated the refresh token)."""
        if tokens.needs_refresh(self.clock.now(), margin_seconds):
            return self.refresh(tokens)
        return tokens

    def revoke(self, token: str, hint: str | None = None) -> None:
        """RFC 7009; the bank revokes the whole pair."""
        form = {"token": token, "client_id": self.client_id}
        if hint:
            form["token_type_hint"] = hint
        response = self._http.post(self.profile.revoke_path, data=form)
        if response.status_code != 200:
            raise BankError.from_response(response)

    # --- resource API (signed) -------------------------------------------------------------------
    def signed_request(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        psu_headers: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        query: str | None = None,
    ) -> httpx.Response:
        """A request signed with the QSealC: every header the STET profile requires is signed
        (``(request-target)``, ``x-request-id``, ``digest`` with a body, all ``psu-*``), plus
        ``date``. ``params`` are encoded here; ``query`` is an already encoded query string
        (a HAL link's), sent and signed byte for byte."""
        body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        url = path if path.startswith("/") else f"{self.profile.api_base}/{path}"
        if params and query:
            raise TypeError("pass params or an encoded query, not both")
        encoded = urlencode(params) if params else (query or "")
        target = url + (f"?{encoded}" if encoded else "")
        headers: dict[str, str] = {
            "X-Request-ID": str(uuid.uuid4()),
            "Date": format_datetime(self.clock.now(), usegmt=True),
            "Accept": "application/hal+json",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body:
            headers["Content-Type"] = "application/json"
            headers["Digest"] = compute_digest(body)
        headers.update(psu_headers or {})
        headers.update(extra_headers or {})
        signed: Sequence[str] = ("(request-target)", *required_signed_headers(headers, body))
        signed = list(dict.fromkeys([*signed, "date"]))
        headers["Signature"] = sign_request(
            method, target, headers, self._signing_key, self._key_id, signed
        )
        return self._http.request(method, target, headers=headers, content=body or None)

    def api(
        self,
        method: str,
        path: str,
        tokens: TokenSet,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        json_body: Any = None,
        psu_headers: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        query: str | None = None,
    ) -> dict[str, Any]:
        """A signed call with ``tokens``' access token; the JSON answer, ``{}`` for 201/204
        without a body. The body goes in ``json`` (as with httpx) or ``json_body``."""
        if json is not None and json_body is not None:
            raise TypeError("pass the body as json or json_body, not both")
        response = self.signed_request(
            method,
            path,
            tokens.access_token,
            params=params,
            json_body=json if json is not None else json_body,
            psu_headers=psu_headers,
            extra_headers=extra_headers,
            query=query,
        )
        return self._answer(response)

    def forward_consent(
        self,
        tokens: TokenSet,
        *,
        balances: Sequence[Mapping[str, Any]] = (),
        transactions: Sequence[Mapping[str, Any]] = (),
        all_accounts: bool = False,
        psu_identity: bool = False,
        trusted_beneficiaries: bool = False,
        psu_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """STET ``PUT /consents`` (AISP-mix, STET v1.4.2 Part II §4.1): the PSU's choices, as
        AccountIdentification objects (``{"iban": …}``). ``all_accounts`` takes every account
        ``GET /accounts`` lists, for balances and transactions. Until a consent is forwarded,
        accounts are listed without balances; each PUT replaces the previous one, and a new
        authorization starts without one. Returns the body sent."""
        if all_accounts:
            listed = self.api("GET", "accounts", tokens, psu_headers=psu_headers)
            ids = [a["accountId"] for a in listed.get("accounts", []) if "accountId" in a]
            balances, transactions = ids, ids
        body = {
            "balances": [dict(a) for a in balances],
            "transactions": [dict(a) for a in transactions],
            "psuIdentity": psu_identity,
            "trustedBeneficiaries": trusted_beneficiaries,
        }
        self.api("PUT", "consents", tokens, json=body, psu_headers=psu_headers)
        return body

    def follow(self, href: str, tokens: TokenSet, **kwargs: Any) -> dict[str, Any]:
        """GET a HAL ``_links`` href (absolute or relative to the bank). The query is sent as
        the bank wrote it: decoding and re-encoding it would turn ``%3A`` into ``%253A`` and
        break a bank's paging link."""
        parts = urlsplit(href)
        return self.api("GET", parts.path, tokens, query=parts.query or None, **kwargs)

    # --- register API (RFC 7591/7592, docs/register-api.md) ------------------------------------
    def registration_token(self) -> str:
        """Step 1: a ``manageRegistration`` token for this QWAC (client credentials, mTLS)."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.profile.registration_client_id,
            "scope": "manageRegistration",
        }
        return str(self._json(self._http.post(self.profile.token_path, data=form))["access_token"])

    def client_metadata(
        self,
        client_name: str,
        redirect_uris: Sequence[str],
        *,
        contacts: Sequence[str] = (),
        require_pkce: bool | None = None,
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        kid: str | None = None,
    ) -> dict[str, Any]:
        """The RFC 7591 body with this client's QSealC as ``jwks.keys[0]`` (the bank checks it
        against the signature and the QWAC's organization)."""
        seal = self.credentials.qsealc()
        numbers = self._signing_key.public_key().public_numbers()
        key: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(seal.public_bytes(serialization.Encoding.DER)).decode()],
        }
        if kid:
            key["kid"] = kid
        body: dict[str, Any] = {
            "client_name": client_name,
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": "tls_client_auth",
            "grant_types": list(grant_types),
            "response_types": ["code"],
            "jwks": {"keys": [key]},
        }
        if contacts:
            body["contacts"] = list(contacts)
        if require_pkce is not None:
            body["require_pkce"] = require_pkce
        return body

    def register(self, metadata: Mapping[str, Any]) -> Registration:
        """Step 2: ``POST /register``, signed with the QSealC, over a fresh registration token.
        Build ``metadata`` with `client_metadata`."""
        token = self.registration_token()
        response = self.signed_request(
            "POST", self.profile.register_path, token, json_body=dict(metadata)
        )
        return Registration.from_response(self._answer(response))

    def read_registration(self, registration: Registration) -> Registration:
        response = self.signed_request(
            "GET", self._registration_path(registration), registration.registration_access_token
        )
        return Registration.from_response(self._answer(response), registration)

    def update_registration(
        self, registration: Registration, metadata: Mapping[str, Any]
    ) -> Registration:
        """``PUT``: a full replacement (RFC 7592 §2.2). To rotate certificates, build this
        client with the **new** QWAC and QSealC: the bank stores the QWAC of the connection
        and the QSealC of ``jwks`` (which must sign the request)."""
        response = self.signed_request(
            "PUT",
            self._registration_path(registration),
            registration.registration_access_token,
            json_body={**metadata, "client_id": registration.client_id},
        )
        return Registration.from_response(self._answer(response), registration)

    def delete_registration(self, registration: Registration) -> None:
        """``DELETE``: the client goes, and every token issued to it is revoked."""
        response = self.signed_request(
            "DELETE", self._registration_path(registration), registration.registration_access_token
        )
        self._answer(response)

    def _registration_path(self, registration: Registration) -> str:
        return f"{self.profile.register_path}/{registration.client_id}"

    # --- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise BankError.from_response(response)
        if response.status_code == 204 or not response.content:
            return {}
        result: dict[str, Any] = response.json()
        return result

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise BankError.from_response(response)
        body: dict[str, Any] = response.json()
        return body


def default_state_dir() -> Path:
    """Where the TPP kit keeps tokens, pending authorizations and registrations:
    ``$STETGATE_TPP_HOME``, else ``$XDG_STATE_HOME/stetgate-tpp``, else
    ``~/.local/state/stetgate-tpp`` (XDG Base Directory) — never the working directory, where
    a token file ends up committed or shared."""
    explicit = os.environ.get("STETGATE_TPP_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "stetgate-tpp"


class TokenFile:
    """Tokens kept on disk, one entry per key (the CLI uses ``"<bank> <client_id> <scope>"``).

    The file is JSON, mode 0600 in a 0700 folder, replaced atomically on every write; it holds
    live refresh tokens (90 days of access to a PSU's accounts): keep it out of backups and
    repositories. ``get`` → `TokenSet` or None, ``put``, ``delete``, ``stored_keys``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def stored_keys(self) -> list[str]:
        return list(self._load())

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def get(self, key: str) -> TokenSet | None:
        entry = self._load().get(key)
        return TokenSet.from_json(entry) if entry else None

    def put(self, key: str, tokens: TokenSet) -> None:
        data = self._load()
        data[key] = tokens.to_json()
        self._write(data)

    def delete(self, key: str) -> None:
        data = self._load()
        if data.pop(key, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        write_private_json(self.path, data)


def write_private_json(path: Path, data: Any) -> None:
    """`write_private_bytes` of ``data`` as indented JSON."""
    write_private_bytes(path, json.dumps(data, indent=2).encode())


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600 file, 0700 new folder),
    atomically (a temporary file renamed over it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
