"""Client authentication at the token, revocation and introspection endpoints: mutual TLS only.

RFC 8705 §2.1 ``tls_client_auth`` with the PSD2 profile of
docs/decisions.md#mutual-tls-client-authentication:

1. The TLS session carries a QWAC that chains to a trusted QTSP, is within validity, is not
   revoked (CRL) and is fit for TLS client authentication (QcType ``web``, EKU clientAuth) —
   `TppIdentity.authenticate_off_loop` (ETSI TS 119 495 §4-5, RFC 5280 §6).
2. The ``client_id`` form parameter is required (STET v1.4.2 Part I §3.4, BPCE) and names a
   registered client that is not suspended.
3. The certificate's organizationIdentifier (ETSI TS 119 495 §5.2.1) equals the client's:
   "directly" for Go-Live clients (``client_id`` **is** the organizationIdentifier),
   "indirectly" for clients created by the register API (``client_id`` is opaque, linked to the
   organization at registration) — STET v1.4.2 Part I §3.4 as quoted by BPCE.

There is no client secret. Failures are ``invalid_client`` (HTTP 401, RFC 6749 §5.2) with a
description that says exactly what is wrong; a suspended client is ``unauthorized_client``:
it authenticated, but may not obtain tokens. The PSD2 role a grant needs is checked by
`require_role_for_scope` (``unauthorized_client`` too).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from stetgate.eidas import CertificateError, Psd2Certificate, Psd2Role
from stetgate.oauth.clients import ORIGIN_GOLIVE as GOLIVE
from stetgate.oauth.clients import ORIGIN_REGISTER as REGISTER
from stetgate.oauth.clients import Client, get_client
from stetgate.oauth.errors import InvalidClient, UnauthorizedClient
from stetgate.oauth.form import required_parameter
from stetgate.oauth.scopes import ROLE_FOR_SCOPE
from stetgate.serving.blocking import BlockingCalls
from stetgate.serving.tpp_identity import TppIdentity

_CERTIFICATE_PROBLEMS: dict[str, str] = {
    "no_client_certificate": "no client certificate: mutual TLS with a QWAC is required "
    "(RFC 8705 §2, tls_client_auth)",
    "certificate_revoked": "certificate revoked",
    "certificate_expired": "certificate expired",
    "certificate_not_yet_valid": "certificate not yet valid",
    "unknown_issuer": "certificate not issued by a trusted QTSP",
    "invalid_certificate_chain": "certificate chain invalid",
    "revocation_unavailable": "certificate revocation status unavailable",
    "wrong_certificate_type": "certificate is not a QWAC",
    "invalid_key_usage": "certificate not usable for TLS client authentication",
    "missing_organization_identifier": "certificate has no organizationIdentifier",
    "invalid_organization_identifier": "certificate organizationIdentifier malformed",
    "missing_psd2_statement": "certificate has no PSD2 qcStatement",
    "malformed_qc_statements": "certificate qcStatements malformed",
    "malformed_certificate": "certificate malformed",
}
_DETAIL_LIMIT = 240


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """A registered client and the validated QWAC it presented on this TLS session."""

    client: Client
    certificate: Psd2Certificate


def certificate_refusal(exc: CertificateError) -> InvalidClient:
    """RFC 6749 §5.2 ``invalid_client`` for a certificate problem, saying which one."""
    headline = _CERTIFICATE_PROBLEMS.get(exc.reason, exc.reason.replace("_", " "))
    if exc.reason == "no_client_certificate":
        return InvalidClient(headline)
    detail = exc.message if len(exc.message) <= _DETAIL_LIMIT else exc.message[:_DETAIL_LIMIT] + "…"
    return InvalidClient(f"{headline}: {detail}")


async def tls_client_certificate(
    identity: TppIdentity, scope: Mapping[str, Any], now: datetime, blocking: BlockingCalls
) -> Psd2Certificate:
    """The validated QWAC of this TLS session (RFC 8705 §2), else ``invalid_client``.

    Validation results are cached by `TppIdentity` until the certificate or the CRL could
    change, so a returning TPP is answered on the event loop with a few dictionary lookups;
    only a certificate not seen yet (or whose CRL changed) is path-validated, on
    ``blocking``'s threads (`TppIdentity.authenticate_off_loop`)."""
    try:
        return await identity.authenticate_off_loop(scope, now, blocking, "qwac")
    except CertificateError as exc:
        raise certificate_refusal(exc) from None


def required_client_id(form: Mapping[str, str]) -> str:
    """``client_id`` is mandatory on every token request (STET v1.4.2 Part I §3.4); with mTLS
    it is also how RFC 8705 §2 names the client whose certificate is expected."""
    return required_parameter(form, "client_id")


def check_certificate_matches_client(client: Client, certificate: Psd2Certificate) -> None:
    """STET v1.4.2 Part I §3.4: ``client_id`` must match the organizationIdentifier of the QWAC
    "directly" (Go-Live: they are equal) or "indirectly" (register API: the organization the
    client was registered for)."""
    org = certificate.organization_identifier
    if client.origin == GOLIVE and client.client_id != org:
        raise InvalidClient(
            f"certificate organizationIdentifier {org} does not match client {client.client_id}"
        )
    if client.org_id != org:
        raise InvalidClient(
            f"certificate organizationIdentifier {org} does not match the organization "
            f"{client.org_id} of client {client.client_id}"
        )


def authenticate_client(
    conn: Connection, certificate: Psd2Certificate, client_id: str
) -> AuthenticatedClient:
    """Bind the validated QWAC to the registered client named by ``client_id``."""
    client = get_client(conn, client_id)
    if client is None:
        raise InvalidClient(f"unknown client {client_id}")
    check_certificate_matches_client(client, certificate)
    if not client.active:
        raise UnauthorizedClient(f"client {client_id} is suspended")
    return AuthenticatedClient(client, certificate)


def require_role_for_scope(certificate: Psd2Certificate, role_scope: str) -> None:
    """``aisp`` needs PSP_AI, ``cbpii`` needs PSP_IC, in the QWAC's PSD2 qcStatement (ETSI TS
    119 495 §5.1; docs/decisions.md#scopes-and-roles). RFC 6749 §5.2 ``unauthorized_client``."""
    role = ROLE_FOR_SCOPE.get(role_scope)
    if role is None or role not in certificate.roles:
        needed = role.name if role is not None else "none"
        held = ", ".join(sorted(r.name for r in certificate.roles)) or "none"
        raise UnauthorizedClient(
            f"scope {role_scope} needs PSD2 role {needed}; the certificate of "
            f"{certificate.organization_identifier} carries: {held}"
        )


def role_scopes_of(certificate: Psd2Certificate) -> frozenset[str]:
    """The role scopes (``aisp``, ``cbpii``) this QWAC's PSD2 roles allow."""
    return _role_scopes(certificate.roles)


@functools.cache
def _role_scopes(roles: frozenset[Psd2Role]) -> frozenset[str]:
    """Per set of roles (a handful exist): every refresh grant asks."""
    return frozenset(scope for scope, role in ROLE_FOR_SCOPE.items() if role in roles)


__all__ = [
    "GOLIVE",
    "REGISTER",
    "AuthenticatedClient",
    "authenticate_client",
    "certificate_refusal",
    "check_certificate_matches_client",
    "require_role_for_scope",
    "required_client_id",
    "role_scopes_of",
    "tls_client_certificate",
]
