"""``POST /stet/psd2/oauth/introspect``: token introspection (RFC 7662).

Who may ask (RFC 7662 §2.1 "the endpoint MUST also require some form of authorization", §4
"to prevent token scanning attacks"), always over mutual TLS with a valid QWAC:
- the bank's own resource servers: a QWAC with role PSP_AS whose organizationIdentifier is in
  setting ``introspection_org_ids`` — any token;
- a TPP: only tokens issued to its organization; any other token is reported as
  ``{"active": false}``, exactly like an unknown one (§2.2), so it learns nothing.

The answer (§2.2): ``active``, and for an active token ``scope``, ``client_id``, ``exp``,
``iat``, ``token_type`` (``Bearer`` for access tokens), ``iss``, ``sub`` and, for access
tokens, ``cnf: {"x5t#S256": …}`` — the certificate the token is bound to (RFC 8705 §3.2).
``sub`` is the PSU reference: the bank's PSU id for the bank's resource servers, a pairwise
pseudonym (HMAC of the PSU id with the instance's pseudonym key, per organization) for a TPP,
which has no business learning the PSU's login identifier. An access token is active when it is
not revoked, not expired and its client is registered and active; a refresh token when it could
be refreshed (`stetgate.oauth.refreshable.refreshable`: not revoked, not expired, the PSU's last
SCA within ``sca_validity_days``, its client registered, active and of the pair's
organization). An access token replaced by a refresh no longer exists: inactive.

The lookups (the pair, then its client: a few single-row SELECTs) run in one hop on the
blocking pool (`stetgate.serving.blocking`), on the read-only autocommit engine
(`stetgate.store.reading`): no pre-ping, no BEGIN/ROLLBACK round trips. Each SELECT then reads
its own committed snapshot — what PostgreSQL's default READ COMMITTED gives the statements of a
transaction anyway — which suffices: the answer describes the token at the moment of the
request, and nothing here writes. A database timeout is
``temporarily_unavailable`` (503, ``Retry-After``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stetgate.eidas import Psd2Certificate
from stetgate.eidas.model import Psd2Role
from stetgate.oauth.client_auth import tls_client_certificate
from stetgate.oauth.clients import CLIENT_ACTIVE, get_client
from stetgate.oauth.errors import (
    NO_STORE,
    OAuthError,
    database_unavailable_response,
    oauth_error_response,
)
from stetgate.oauth.form import read_form, required_parameter
from stetgate.oauth.refreshable import RefreshLimits, refreshable
from stetgate.oauth.token_pairs import TokenPair, find_active_access, find_by_refresh_hash
from stetgate.secrets import secret_hash
from stetgate.services import Services, services_of
from stetgate.serving.request_id import request_id_of
from stetgate.store.db import DatabaseUnavailable
from stetgate.store.schema import clients

INTROSPECT_PATH = "/stet/psd2/oauth/introspect"
INACTIVE: dict[str, Any] = {"active": False}


def may_introspect_any_token(
    certificate: Psd2Certificate, introspection_org_ids: list[str]
) -> bool:
    """RFC 7662 §2.1: the bank's resource servers (role PSP_AS, listed organization)."""
    return (
        certificate.organization_identifier in introspection_org_ids
        and Psd2Role.PSP_AS in certificate.roles
    )


def psu_reference(services: Services, grant: TokenPair, *, for_bank: bool) -> str:
    """The PSU id for the bank; a per-organization pseudonym for a TPP."""
    if for_bank:
        return grant.psu_id
    mac = hmac.new(
        services.keys.pseudonym_key,
        f"introspection-sub\x00{grant.org_id}\x00{grant.psu_id}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _client_active(conn: Connection, client_id: str) -> bool:
    status = conn.execute(
        select(clients.c.status).where(clients.c.client_id == client_id)
    ).scalar_one_or_none()
    return status == CLIENT_ACTIVE


def active_pair(
    conn: Connection, token_hash: str, kind: str, now: datetime, limits: RefreshLimits
) -> TokenPair | None:
    """The pair whose ``kind`` token (``access_token`` or ``refresh_token``) has this digest,
    if that token is active at ``now`` (module docstring)."""
    if kind == "access_token":
        grant = find_active_access(conn, token_hash, now)
        if grant is None or not _client_active(conn, grant.client_id):
            return None
        return grant
    grant = find_by_refresh_hash(conn, token_hash)
    if grant is None:
        return None
    client = get_client(conn, grant.client_id)
    return grant if refreshable(grant, client, now, limits) is None else None


def describe_token(
    conn: Connection,
    services: Services,
    token: str,
    hint: str | None,
    now: datetime,
    *,
    caller_org: str | None,
) -> dict[str, Any]:
    """The RFC 7662 §2.2 answer for ``token``; ``caller_org`` None means "any token"."""
    token_hash = secret_hash(token)
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else ("access_token", "refresh_token")
    )
    limits = RefreshLimits.from_settings(services.settings)
    for kind in order:
        grant = active_pair(conn, token_hash, kind, now, limits)
        if grant is None:
            continue
        if caller_org is not None and grant.org_id != caller_org:
            return INACTIVE
        body: dict[str, Any] = {
            "active": True,
            "client_id": grant.client_id,
            "iss": services.issuer,
            "sub": psu_reference(services, grant, for_bank=caller_org is None),
        }
        if kind == "access_token":
            body.update(
                scope=grant.access_scope,
                token_type="Bearer",  # noqa: S106 - RFC 6750 token type
                exp=_epoch(grant.access_expires_at),
                iat=_epoch(grant.last_used_at or grant.created_at),
                cnf={"x5t#S256": grant.access_cnf},
            )
        else:
            body.update(
                scope=grant.role,
                exp=_epoch(grant.refresh_expires_at),
                iat=_epoch(grant.created_at),
            )
        return body
    return INACTIVE


async def introspect(request: Request) -> JSONResponse:
    services = services_of(request)
    now = services.clock.now()
    try:
        form = await read_form(request)
        certificate = await tls_client_certificate(
            services.tpp_identity, request.scope, now, services.blocking
        )
        token = required_parameter(form, "token")
        privileged = may_introspect_any_token(certificate, services.settings.introspection_org_ids)
        body = await services.blocking.run(
            _describe,
            services,
            token,
            form.get("token_type_hint"),
            now,
            None if privileged else certificate.organization_identifier,
        )
    except OAuthError as exc:
        return oauth_error_response(exc)
    except DatabaseUnavailable as exc:
        return database_unavailable_response(request.scope, exc, request_id_of(request.headers))
    return JSONResponse(body, headers=NO_STORE)


def _describe(
    services: Services, token: str, hint: str | None, now: datetime, caller_org: str | None
) -> dict[str, Any]:
    """`describe_token` on the read engine (module docstring), on the blocking pool."""
    with services.read_engine.connect() as conn:
        return describe_token(conn, services, token, hint, now, caller_org=caller_org)


def introspect_route() -> Route:
    return Route(INTROSPECT_PATH, introspect, methods=["POST"])


__all__ = [
    "INTROSPECT_PATH",
    "active_pair",
    "describe_token",
    "introspect",
    "introspect_route",
    "may_introspect_any_token",
    "psu_reference",
]
