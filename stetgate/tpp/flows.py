"""Every TPP operation once, without I/O: what to send, and what the answer means.

An operation is a generator (a "sans-I/O" flow): it yields each request as an `Outgoing` and
receives the bank's `httpx.Response` back, and returns the result (`TokenSet`, a JSON body, a
`Registration`) or raises `BankError`. `StetBankClient` drives flows with ``httpx.Client``,
`AsyncStetBankClient` with ``httpx.AsyncClient``: the rules — forms of RFC 6749, the signed
request of STET v1.4.2 Part I §3.5 (draft-cavage, docs/decisions.md#http-signatures), the
callback checks of RFC 9207 — live here only, and the bank's `BankProfile` decides paths,
``keyId`` form, signed headers and PKCE.

Steps of docs/decisions.md#the-cinematic: 2 (`authorization_request`), 5-7 (`exchange_code`),
8 (`refresh`, `ensure_fresh`, `api`, `revoke`); and the register API (docs/register-api.md).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any, TypedDict, TypeVar, Unpack
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from stetgate.clock import Clock
from stetgate.httpsig import (
    KeyIdForm,
    classify_key_id,
    compute_digest,
    required_signed_headers,
    sign_request,
)
from stetgate.tpp.bank_profile import NONE, PSU_HEADERS, REQUEST_TARGET, UNKNOWN, BankProfile
from stetgate.tpp.credentials import TppCredentials
from stetgate.tpp.errors import BankError, ProfileGap
from stetgate.tpp.registration import Registration
from stetgate.tpp.tokens import AuthorizationRequest, TokenSet, pkce_pair

T = TypeVar("T")

RFC8414_PATH = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True)
class Outgoing:
    """One request to send: absolute URL, headers, and a body (bytes or a form)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    form: Mapping[str, str] | None = None

    def as_httpx(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` (and of the async one)."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "content": self.content,
            "data": self.form,
        }


Flow = Generator[Outgoing, httpx.Response, T]
"""Yields requests, is sent their responses, returns the operation's result."""


class SignedOptions(TypedDict, total=False):
    """Options of a signed resource-API or register-API request."""

    params: Mapping[str, str] | None
    json_body: Any
    psu_headers: Mapping[str, str] | None
    extra_headers: Mapping[str, str] | None
    query: str | None


class ApiOptions(SignedOptions, total=False):
    json: Any
    """The body, as with httpx (or ``json_body``)."""


class ConsentChoices(TypedDict, total=False):
    """The PSU's choices for STET ``PUT /consents`` (`forward_consent`)."""

    balances: Sequence[Mapping[str, Any]]
    transactions: Sequence[Mapping[str, Any]]
    all_accounts: bool
    psu_identity: bool
    trusted_beneficiaries: bool
    psu_headers: Mapping[str, str] | None


class MetadataOptions(TypedDict, total=False):
    """Optional parts of the RFC 7591 body (`client_metadata`)."""

    contacts: Sequence[str]
    require_pkce: bool | None
    grant_types: Sequence[str]
    kid: str | None


@dataclass(frozen=True)
class TppAtBank:
    """One TPP (credentials, ``client_id``) at one bank (base URL, profile): what every flow
    needs besides its own arguments."""

    base_url: str
    client_id: str
    profile: BankProfile
    credentials: TppCredentials
    signing_key: RSAPrivateKey
    key_id: str
    clock: Clock

    def url(self, endpoint: str) -> str:
        """An endpoint of the profile (a path of the base URL, or an absolute URL)."""
        return endpoint if endpoint.startswith("https://") else self.base_url + endpoint

    def endpoint(self, what: str, value: str) -> str:
        if value in (UNKNOWN, NONE):
            said = "has none" if value == NONE else "does not know it"
            raise ProfileGap(f"{what}: the bank's profile {self.profile.name!r} {said}")
        return self.url(value)

    @property
    def issuer(self) -> str:
        """RFC 9207 ``iss`` expected on callbacks: the profile's, else the base URL."""
        issuer = self.profile.endpoints.issuer
        return self.base_url if issuer in (UNKNOWN, "base_url") else issuer


def choose_key_id(profile: BankProfile, credentials: TppCredentials) -> str:
    """The signature ``keyId``: the one given with the credentials, which must be of a form
    the bank accepts, else ``SN=<hex serial>,CA=<issuer DN>`` of the QSealC where the bank
    accepts that form (or the profile does not say). A ``kid`` or certificate URL cannot be
    guessed: the TPP chose it at registration."""
    forms = profile.signature.key_id_forms
    accepted = list(forms) if isinstance(forms, list) else None
    if credentials.key_id:
        form = classify_key_id(credentials.key_id)
        if accepted is not None and form not in accepted:
            raise ProfileGap(
                f"keyId {credentials.key_id!r} is a {form.value}; the bank's profile "
                f"{profile.name!r} accepts {', '.join(f.value for f in accepted)}"
            )
        return credentials.key_id
    if accepted is None or KeyIdForm.SERIAL_AND_ISSUER in accepted:
        return credentials.default_key_id()
    raise ProfileGap(
        f"the bank's profile {profile.name!r} wants a keyId of form {accepted[0].value}: pass "
        "the one you registered (TppCredentials(key_id=…), --key-id)"
    )


# --- answers --------------------------------------------------------------------------------------
def json_answer(response: httpx.Response) -> dict[str, Any]:
    """An OAuth answer: JSON on success (RFC 6749 §5.1), `BankError` otherwise (§5.2)."""
    if response.status_code >= 400:
        raise BankError.from_response(response)
    body: dict[str, Any] = response.json()
    return body


def api_answer(response: httpx.Response) -> dict[str, Any]:
    """A STET answer: JSON, ``{}`` for 201/204 without a body, `BankError` (with STET's error
    structure as ``body``) from 400 on."""
    if response.status_code >= 400:
        raise BankError.from_response(response)
    if response.status_code == 204 or not response.content:
        return {}
    body: dict[str, Any] = response.json()
    return body


# --- OAuth ----------------------------------------------------------------------------------------
def metadata(at: TppAtBank) -> Flow[dict[str, Any]]:
    """RFC 8414 metadata; where the profile does not know, at RFC 8414 §3's well-known path."""
    return json_answer((yield Outgoing("GET", _metadata_url(at))))


def _metadata_url(at: TppAtBank) -> str:
    where = at.profile.discovery.metadata
    return at.url(RFC8414_PATH) if where == UNKNOWN else at.endpoint("RFC 8414 metadata", where)


def authorization_request(
    at: TppAtBank,
    scope: str,
    redirect_uri: str,
    *,
    use_pkce: bool | None = None,
    state: str | None = None,
) -> AuthorizationRequest:
    """Step 2 of the cinematic: the URL to send the PSU's browser to (STET Part I §3.4.3).
    PKCE follows the profile (`BankProfile.pkce_by_default`) unless ``use_pkce`` says
    otherwise."""
    use_pkce = at.profile.pkce_by_default if use_pkce is None else use_pkce
    state = state or secrets.token_urlsafe(24)
    params = {
        "response_type": "code",
        "client_id": at.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
    }
    verifier = None
    if use_pkce:
        verifier, challenge = pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    url = f"{at.url(at.profile.endpoints.authorize)}?{urlencode(params)}"
    return AuthorizationRequest(url, state, verifier, redirect_uri, scope)


def callback_code(request: AuthorizationRequest, callback_url: str, issuer: str) -> str:
    """Steps 4 and 5: the code of a callback whose ``state`` is the request's (CSRF, RFC 6749
    §10.12) and whose ``iss``, when present, is the bank's (mix-up, RFC 9207 §2.4); a
    callback with ``error`` raises it."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
    if not secrets.compare_digest(query.get("state", ""), request.state):
        raise BankError(400, query, "callback state does not match the request (CSRF?)")
    if "iss" in query and query["iss"] != issuer:
        raise BankError(400, query, f"callback iss {query['iss']!r} is not {issuer!r}")
    if "error" in query:
        raise BankError(
            400, query, f"{query['error']}: {query.get('error_description', '')}".strip()
        )
    if "code" not in query:
        raise BankError(400, query, "callback carries neither code nor error")
    return query["code"]


def _no_iss_allowed(at: TppAtBank, callback_url: str) -> Flow[None]:
    """RFC 9207 §2.4: a client MUST reject an authorization response without ``iss`` from a
    bank whose metadata announces ``authorization_response_iss_parameter_supported`` (a
    mix-up attacker would strip it). Asked only when ``iss`` is missing, so a bank that sends
    it costs no round trip; a bank without metadata (or with it unreadable) cannot have
    announced it."""
    if at.profile.discovery.metadata == NONE:
        return
    response = yield Outgoing("GET", _metadata_url(at))
    try:
        announced = response.status_code == 200 and (
            response.json().get("authorization_response_iss_parameter_supported") is True
        )
    except (ValueError, AttributeError):
        announced = False
    if announced:
        query = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        raise BankError(
            400, query, "callback has no iss though the bank announces it (RFC 9207 2.4)"
        )


def _token_request(at: TppAtBank, form: dict[str, str]) -> Outgoing:
    return Outgoing("POST", at.url(at.profile.endpoints.token), form=form)


def exchange_code(
    at: TppAtBank,
    request: AuthorizationRequest,
    callback_url: str,
    *,
    expected_issuer: str | None = None,
) -> Flow[TokenSet]:
    """Steps 4-7 of the cinematic: check the callback and redeem the code (RFC 6749 §4.1.3,
    without ``scope``: BPCE)."""
    code = callback_code(request, callback_url, expected_issuer or at.issuer)
    if "iss" not in parse_qs(urlsplit(callback_url).query):
        yield from _no_iss_allowed(at, callback_url)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "client_id": at.client_id,
    }
    if request.code_verifier:
        form["code_verifier"] = request.code_verifier
    body = json_answer((yield _token_request(at, form)))
    return TokenSet.from_response(body, obtained_at=at.clock.now())


def refresh(at: TppAtBank, tokens: TokenSet) -> Flow[TokenSet]:
    """RFC 6749 §6, without ``scope`` (BPCE). `invalid_grant` means a new SCA is needed."""
    if not tokens.refresh_token:
        raise BankError(400, None, "no refresh token: run the authorization again")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "client_id": at.client_id,
    }
    body = json_answer((yield _token_request(at, form)))
    return TokenSet.from_response(body, previous=tokens, obtained_at=at.clock.now())


def ensure_fresh(at: TppAtBank, tokens: TokenSet, margin_seconds: int = 60) -> Flow[TokenSet]:
    """``tokens`` if the access token lives ``margin_seconds`` more, else refreshed ones."""
    if tokens.needs_refresh(at.clock.now(), margin_seconds):
        return (yield from refresh(at, tokens))
    return tokens


def revoke(at: TppAtBank, token: str, hint: str | None = None) -> Flow[None]:
    """RFC 7009 §2.1 (STET Part I §3.4.3.5); a BPCE-style bank revokes the whole pair."""
    url = at.endpoint("revocation", at.profile.endpoints.revoke)
    form = {"token": token, "client_id": at.client_id}
    if hint:
        form["token_type_hint"] = hint
    response = yield Outgoing("POST", url, form=form)
    if response.status_code != 200:
        raise BankError.from_response(response)


# --- signed requests (resource API, register API) -------------------------------------------------
def signed_header_names(
    profile: BankProfile, method: str, headers: Mapping[str, str], body: bytes
) -> list[str]:
    """What to put in ``headers="…"``: the profile's list for ``method`` (``psu-*`` expanded
    to the PSU headers present; a listed header the request lacks is left out), or, where the
    profile does not know, stetgate's policy plus ``date``."""
    present = {name.lower() for name in headers}
    listed = profile.signature.headers_for(method)
    if listed is None:
        listed = (REQUEST_TARGET, *required_signed_headers(headers, body), "date")
    names: list[str] = []
    for name in listed:
        if name == PSU_HEADERS:
            names += sorted(n for n in present if n.startswith("psu-"))
        elif name == REQUEST_TARGET or name in present:
            names.append(name)
    return list(dict.fromkeys(names))


def signed(
    at: TppAtBank,
    method: str,
    path: str,
    token: str | None,
    *,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    psu_headers: Mapping[str, str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
    query: str | None = None,
) -> Outgoing:
    """A request signed with the QSealC (``X-Request-ID``, ``Date``, ``Digest`` with a body).
    ``path`` is relative to the profile's API base (``accounts``) or absolute (``/stet/…``, an
    https URL); ``params`` are encoded here; ``query`` is an already encoded query string (a
    HAL link's), sent and signed byte for byte."""
    if params and query:
        raise TypeError("pass params or an encoded query, not both")
    body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
    if path.startswith(("/", "https://")):
        url = at.url(path)
    else:
        url = f"{at.url(at.profile.endpoints.api_base)}/{path}"
    encoded = urlencode(params) if params else (query or "")
    url += f"?{encoded}" if encoded else ""
    headers: dict[str, str] = {
        "X-Request-ID": str(uuid.uuid4()),
        "Date": format_datetime(at.clock.now(), usegmt=True),
        "Accept": "application/hal+json",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body:
        headers["Content-Type"] = "application/json"
        headers["Digest"] = compute_digest(body)
    headers.update(psu_headers or {})
    headers.update(extra_headers or {})
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    names = signed_header_names(at.profile, method, headers, body)
    headers["Signature"] = sign_request(method, target, headers, at.signing_key, at.key_id, names)
    return Outgoing(method, url, headers, body or None)


def signed_request(
    at: TppAtBank, method: str, path: str, token: str | None, **options: Any
) -> Flow[httpx.Response]:
    """`signed`, sent; the raw response."""
    return (yield signed(at, method, path, token, **options))


def api(
    at: TppAtBank, method: str, path: str, tokens: TokenSet, **options: Any
) -> Flow[dict[str, Any]]:
    """A signed call with ``tokens``' access token; the body goes in ``json`` (as with httpx)
    or ``json_body``."""
    body = options.pop("json", None)
    if body is not None and options.get("json_body") is not None:
        raise TypeError("pass the body as json or json_body, not both")
    if body is not None:
        options["json_body"] = body
    return api_answer((yield signed(at, method, path, tokens.access_token, **options)))


def follow(at: TppAtBank, href: str, tokens: TokenSet, **options: Any) -> Flow[dict[str, Any]]:
    """GET a HAL ``_links`` href (absolute or relative to the bank). The query is sent as the
    bank wrote it: decoding and re-encoding it would turn ``%3A`` into ``%253A`` and break a
    bank's paging link."""
    parts = urlsplit(href)
    return (yield from api(at, "GET", parts.path, tokens, query=parts.query or None, **options))


def forward_consent(
    at: TppAtBank,
    tokens: TokenSet,
    *,
    balances: Sequence[Mapping[str, Any]] = (),
    transactions: Sequence[Mapping[str, Any]] = (),
    all_accounts: bool = False,
    psu_identity: bool = False,
    trusted_beneficiaries: bool = False,
    psu_headers: Mapping[str, str] | None = None,
) -> Flow[dict[str, Any]]:
    """STET ``PUT /consents`` (AISP-mix, STET v1.4.2 Part II §4.1): the PSU's choices, as
    AccountIdentification objects (``{"iban": …}``). ``all_accounts`` takes every account
    ``GET /accounts`` lists, for balances and transactions. Until a consent is forwarded,
    accounts are listed without balances; each PUT replaces the previous one, and a new
    authorization starts without one. Returns the body sent."""
    if all_accounts:
        listed = yield from api(at, "GET", "accounts", tokens, psu_headers=psu_headers)
        ids = [a["accountId"] for a in listed.get("accounts", []) if "accountId" in a]
        balances, transactions = ids, ids
    body = {
        "balances": [dict(a) for a in balances],
        "transactions": [dict(a) for a in transactions],
        "psuIdentity": psu_identity,
        "trustedBeneficiaries": trusted_beneficiaries,
    }
    yield from api(at, "PUT", "consents", tokens, json=body, psu_headers=psu_headers)
    return body


# --- register API (RFC 7591/7592, docs/register-api.md) -------------------------------------------
def _register_url(at: TppAtBank) -> str:
    if at.profile.registration.supported is False:
        raise ProfileGap(f"the bank's profile {at.profile.name!r} has no register API")
    return at.endpoint("the register API", at.profile.registration.path)


def registration_token(at: TppAtBank) -> Flow[str]:
    """Step 1: a ``manageRegistration`` token for this QWAC (client credentials, RFC 6749
    §4.4, mutual TLS), with the bank's generic registration ``client_id``."""
    registration = at.profile.registration
    if registration.client_id == UNKNOWN:
        raise ProfileGap(
            f"the bank's profile {at.profile.name!r} does not know the registration client_id: "
            "write it in a profile of your own ([registration] client_id)"
        )
    form = {
        "grant_type": "client_credentials",
        "client_id": registration.client_id,
        "scope": registration.scope,
    }
    return str(json_answer((yield _token_request(at, form)))["access_token"])


def register(at: TppAtBank, client_metadata: Mapping[str, Any]) -> Flow[Registration]:
    """Step 2: ``POST /register``, signed with the QSealC, over a fresh registration token."""
    path = _register_url(at)
    token = yield from registration_token(at)
    answer = yield signed(at, "POST", path, token, json_body=dict(client_metadata))
    return Registration.from_response(api_answer(answer))


def read_registration(at: TppAtBank, registration: Registration) -> Flow[Registration]:
    """RFC 7592 §2.1."""
    path = f"{_register_url(at)}/{registration.client_id}"
    answer = yield signed(at, "GET", path, registration.registration_access_token)
    return Registration.from_response(api_answer(answer), registration)


def update_registration(
    at: TppAtBank, registration: Registration, client_metadata: Mapping[str, Any]
) -> Flow[Registration]:
    """``PUT``: a full replacement (RFC 7592 §2.2). To rotate certificates, build the client
    with the **new** QWAC and QSealC: the bank stores the QWAC of the connection and the QSealC
    of ``jwks`` (which must sign the request)."""
    path = f"{_register_url(at)}/{registration.client_id}"
    body = {**client_metadata, "client_id": registration.client_id}
    answer = yield signed(at, "PUT", path, registration.registration_access_token, json_body=body)
    return Registration.from_response(api_answer(answer), registration)


def delete_registration(at: TppAtBank, registration: Registration) -> Flow[None]:
    """``DELETE`` (RFC 7592 §2.3): the client goes, and every token issued to it is revoked."""
    path = f"{_register_url(at)}/{registration.client_id}"
    api_answer((yield signed(at, "DELETE", path, registration.registration_access_token)))


def client_metadata(
    at: TppAtBank,
    client_name: str,
    redirect_uris: Sequence[str],
    **options: Unpack[MetadataOptions],
) -> dict[str, Any]:
    """The RFC 7591 body with this client's QSealC as ``jwks.keys[0]`` (the bank checks it
    against the signature and the QWAC's organization)."""
    contacts, kid = options.get("contacts", ()), options.get("kid")
    require_pkce = options.get("require_pkce")
    grant_types = options.get("grant_types", ("authorization_code", "refresh_token"))
    seal = at.credentials.qsealc()
    numbers = at.signing_key.public_key().public_numbers()
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


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
