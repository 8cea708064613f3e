"""Who is calling the resource API, and may they? Checked on every call, cheapest first.

1. The TLS client certificate is a valid QWAC (chain, CRL, QcType web; cached by the
   validator) — `TppIdentity.authenticate`.
2. ``Authorization: Bearer`` names an access token that is not revoked, not expired, of an
   active client: **one** indexed statement (`find_access_grant`) that also returns the
   client's registered QSealC identifiers and the PSU's consent for this organization.
3. The token is bound to this QWAC: ``cnf.x5t#S256`` equals the presented certificate's
   thumbprint (RFC 8705 §3; docs/decisions.md#certificate-binding), and the QWAC belongs to the
   token's organization and carries the PSD2 role of the token.
4. The token's role is the operation's (an AISP token cannot confirm funds; a CBPII token
   cannot read accounts: 403).
5. The request is signed with one of the client's registered QSealCs (`SealKeyring`).
6. The PSU-* headers parse; ``PSU-IP-Address`` tells whether the PSU is present.

Failures of 1-3 and 5 are 401 with the STET body; nothing is written on any path here.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, select
from starlette.requests import Request

from stetgate.eidas import CertificateError
from stetgate.oauth.scopes import EXTENDED_HISTORY, ROLE_FOR_SCOPE
from stetgate.psd2.consents import Consent
from stetgate.psd2.errors import Forbidden, Unauthorized
from stetgate.psd2.request_headers import PsuContext, parse_psu_context
from stetgate.psd2.signatures import SealKeyring, SealReference
from stetgate.secrets import secret_hash
from stetgate.services import Services
from stetgate.serving.access import note_caller
from stetgate.store.reading import CompiledRead
from stetgate.store.schema import client_certificates, clients, grants, psd2_consents

MAX_TOKEN_LENGTH = 512

_g, _c, _cc, _consent = grants.c, clients.c, client_certificates.c, psd2_consents.c

_ACCESS_GRANT = (
    select(
        _g.id,
        _g.client_id,
        _g.org_id,
        _g.psu_id,
        _g.role,
        _g.access_scope,
        _g.access_cnf,
        _cc.thumbprint,
        _cc.kid,
        _cc.url,
        _consent.balances,
        _consent.transactions,
        _consent.trusted_beneficiaries,
        _consent.psu_identity,
    )
    .select_from(
        grants.join(clients, _c.client_id == _g.client_id)
        .outerjoin(client_certificates, and_(_cc.client_id == _g.client_id, _cc.kind == "qsealc"))
        .outerjoin(psd2_consents, and_(_consent.psu_id == _g.psu_id, _consent.org_id == _g.org_id))
    )
    .where(
        _g.access_hash == bindparam("access_hash"),
        _g.revoked_at.is_(None),
        _g.access_expires_at > bindparam("now"),
        _c.status == "active",
    )
)


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """An active access token as the resource API needs it (no secret)."""

    grant_id: str
    client_id: str
    org_id: str
    psu_id: str
    role: str
    scopes: frozenset[str]
    cnf: str
    seals: tuple[SealReference, ...]
    consent: Consent | None


class AccessTokenLookup:
    """Looks up active access tokens: one pre-compiled statement on the read engine."""

    def __init__(self, reads: Engine) -> None:
        self._lookup = CompiledRead(reads, _ACCESS_GRANT)

    def find(self, access_hash: str, now: datetime) -> AccessTokenRecord | None:
        """The active grant of an access-token hash, with its client's QSealC references and
        the PSU's consent for the organization (one row per registered QSealC)."""
        return _grant_of(self._lookup.rows({"access_hash": access_hash, "now": now}))


def _grant_of(rows: Sequence[Any]) -> AccessTokenRecord | None:
    if not rows:
        return None
    first = rows[0]
    seals = tuple(SealReference(r.thumbprint, r.kid, r.url) for r in rows if r.thumbprint)
    consent = (
        None
        if first.trusted_beneficiaries is None
        else Consent.from_row(
            first.balances, first.transactions, first.trusted_beneficiaries, first.psu_identity
        )
    )
    return AccessTokenRecord(
        grant_id=first.id,
        client_id=first.client_id,
        org_id=first.org_id,
        psu_id=first.psu_id,
        role=first.role,
        scopes=frozenset(first.access_scope.split()),
        cnf=first.access_cnf,
        seals=seals,
        consent=consent,
    )


@dataclass(frozen=True, slots=True)
class ApiCaller:
    """An authenticated, authorized resource-API call."""

    grant_id: str
    client_id: str
    org_id: str
    psu_id: str
    role: str
    scopes: frozenset[str]
    consent: Consent | None
    """None before the AISP's first ``PUT /consents``."""
    psu: PsuContext
    request_id: str

    @property
    def extended_history(self) -> bool:
        return EXTENDED_HISTORY in self.scopes


def bearer_token(headers: Mapping[str, str]) -> str:
    """RFC 6750 §2.1 ``Authorization: Bearer <token>``; 401 when absent or malformed."""
    value = headers.get("authorization")
    if value is None:
        raise Unauthorized("missing request header 'Authorization' (Bearer access token)", error="")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if (
        scheme.lower() != "bearer"
        or not token
        or len(token) > MAX_TOKEN_LENGTH
        or not token.isascii()
        or " " in token
    ):
        raise Unauthorized(
            "the Authorization header must be 'Bearer <access token>'", error="invalid_request"
        )
    return token


class CallAuthenticator:
    """Runs the checks of this module for one app instance (holds the QSealC key cache)."""

    def __init__(self, services: Services, reads: Engine) -> None:
        self._services = services
        self._grants = AccessTokenLookup(reads)
        self.keyring = SealKeyring(reads, services.tpp_identity.validator)

    def authenticate(
        self,
        request: Request,
        headers: Mapping[str, str],
        body: bytes,
        *,
        role: str,
        request_id: str,
        now: datetime,
    ) -> ApiCaller:
        """``headers`` is `header_map` of the request (read once by the caller)."""
        services = self._services
        token = bearer_token(headers)
        try:
            qwac = services.tpp_identity.authenticate(request.scope, now, "qwac")
        except CertificateError as exc:
            raise Unauthorized(f"client certificate refused: {exc.message}", error="") from None
        grant = self._grants.find(secret_hash(token), now)
        if grant is None:
            raise Unauthorized("the access token is unknown, expired or revoked")
        if not hmac.compare_digest(grant.cnf, qwac.thumbprint_s256):
            raise Unauthorized(
                "the access token is bound to another client certificate (RFC 8705 §3)"
            )
        if qwac.organization_identifier != grant.org_id:
            raise Unauthorized(
                "the client certificate belongs to another organization than the access token"
            )
        if grant.role != role:
            raise Forbidden(
                f"this operation needs a token of scope {role}; this token has scope {grant.role}"
            )
        if ROLE_FOR_SCOPE[role] not in qwac.roles:
            raise Forbidden(
                f"the client certificate does not carry the PSD2 role {ROLE_FOR_SCOPE[role].name}"
            )
        target = request_target(request)
        services_settings = services.settings
        self.keyring.verify(
            request.method,
            target,
            request.headers.items(),
            body,
            client_id=grant.client_id,
            org_id=grant.org_id,
            references=grant.seals,
            now=now,
            max_skew_seconds=services_settings.signature_max_skew_seconds,
        )
        note_caller(request.scope, client_id=grant.client_id)
        return ApiCaller(
            grant_id=grant.grant_id,
            client_id=grant.client_id,
            org_id=grant.org_id,
            psu_id=grant.psu_id,
            role=grant.role,
            scopes=grant.scopes,
            consent=grant.consent,
            psu=parse_psu_context(headers),
            request_id=request_id,
        )


def request_target(request: Request) -> str:
    """Path and query exactly as sent, percent-encoding kept (draft-cavage-12 §2.3
    ``(request-target)``; also the HAL ``self`` link)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path
