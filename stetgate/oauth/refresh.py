"""``grant_type=refresh_token``: a new access token without the PSU (RFC 6749 §6).

decisions.md "Token rules", after STET v1.4.2 Part I §3.4.3.4 as BPCE applies it: mTLS as for
every grant; the refresh token is valid (not revoked, not expired), belongs to this client and
organization; the PSU's last SCA is younger than ``sca_validity_days`` → a **new access token
and the same refresh token**, the previous access token dead at once, bound to the QWAC that
presented the refresh (RFC 8705 §3), with ``extended_transaction_history`` dropped. With
setting ``rotate_refresh_tokens`` the refresh token is replaced every time and a replaced one
coming back revokes the pair (OAuth 2.1 §6.1 reuse detection).

The accepting path is one statement (`stetgate.oauth.refresh_store`); only when it matches
nothing do ordinary queries find out why, so the TPP gets a precise error and the audit trail
a precise reason (`refresh_refusal`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stetgate.eidas import Psd2Certificate
from stetgate.oauth.client_auth import (
    authenticate_client,
    require_role_for_scope,
    required_client_id,
    role_scopes_of,
)
from stetgate.oauth.errors import InvalidGrant, InvalidScope, OAuthError
from stetgate.oauth.form import required_parameter
from stetgate.oauth.refresh_store import RefreshStore
from stetgate.oauth.scopes import ROLE_FOR_SCOPE
from stetgate.oauth.token_endpoint import TokenRequest, seconds_until, token_response_body
from stetgate.oauth.token_pairs import (
    REFRESH_TOKEN_REUSE,
    TokenPair,
    find_by_previous_refresh_hash,
    find_by_refresh_hash,
    revoke_grant,
)
from stetgate.secrets import new_secret, secret_hash
from stetgate.services import Services
from stetgate.store.audit import record_event

GRANT_TYPE = "refresh_token"
REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - an audit event name


def requested_role_scope(scope: str | None) -> str | None:
    """RFC 6749 §6 allows ``scope`` on refresh if it does not exceed the grant; BPCE sends
    none. Since a refreshed token carries only the role scope (``extended_transaction_history``
    needs a fresh SCA, decisions.md), the only acceptable value is that role scope."""
    if scope is None:
        return None
    items = scope.split()
    if len(items) != 1 or items[0] not in ROLE_FOR_SCOPE:
        raise InvalidScope(
            "on refresh, scope may only be the role scope (aisp or cbpii); "
            "extended_transaction_history needs a new authorization with SCA"
        )
    return items[0]


def refresh_refusal(
    grant: TokenPair,
    *,
    client_id: str,
    certificate: Psd2Certificate,
    requested_role: str | None,
    now: datetime,
    sca_validity_days: int,
) -> OAuthError | None:
    """Why this pair cannot be refreshed now, or None when it can (RFC 6749 §6, §5.2)."""
    if grant.client_id != client_id:
        return InvalidGrant("the refresh token was issued to another client")
    if grant.org_id != certificate.organization_identifier:
        return InvalidGrant("the refresh token was issued to another organization")
    if grant.revoked_at is not None:
        return InvalidGrant(f"the refresh token is revoked ({grant.revoked_reason})")
    if now >= grant.refresh_expires_at:
        return InvalidGrant("the refresh token has expired: a new authorization with SCA is needed")
    if grant.sca_at <= now - timedelta(days=sca_validity_days):
        return InvalidGrant(
            f"the PSU's last strong authentication is older than {sca_validity_days} days: "
            "a new authorization with SCA is needed"
        )
    if requested_role is not None and requested_role != grant.role:
        return InvalidScope(f"scope exceeds the grant (its role scope is {grant.role})")
    try:
        require_role_for_scope(certificate, grant.role)
    except OAuthError as exc:
        return exc
    return None


class RefreshTokenGrant:
    """The ``refresh_token`` `GrantHandler`; compiles its statement once per app."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self._store = RefreshStore(services.engine, rotate=settings.rotate_refresh_tokens)
        self._rotate = settings.rotate_refresh_tokens
        self._sca_validity_days = settings.sca_validity_days
        self._sca_validity = timedelta(days=settings.sca_validity_days)
        self._access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        self._role_slots: dict[frozenset[str], tuple[str, str]] = {}

    def _slots(self, allowed: frozenset[str]) -> tuple[str, str]:
        """The allowed role scopes as the statement's two fixed slots ("" never matches)."""
        slots = self._role_slots.get(allowed)
        if slots is None:
            padded = [*sorted(allowed), "", ""]
            slots = self._role_slots[allowed] = (padded[0], padded[1])
        return slots

    async def __call__(self, request: TokenRequest) -> dict[str, Any]:
        form = request.form
        client_id = required_client_id(form)
        refresh_token = required_parameter(form, "refresh_token")
        requested_role = requested_role_scope(form.get("scope"))
        certificate, now = request.certificate, request.now
        allowed = role_scopes_of(certificate)
        if requested_role is not None:
            allowed = allowed & {requested_role}
        refresh_hash = secret_hash(refresh_token)
        access_token = new_secret()
        new_refresh_token = new_secret() if self._rotate else None
        job = self._store.job(
            refresh_hash=refresh_hash,
            client_id=client_id,
            org_id=certificate.organization_identifier,
            role_scopes=self._slots(allowed),
            access_hash=secret_hash(access_token),
            access_expires_at=now + self._access_ttl,
            access_cnf=certificate.thumbprint_s256,
            sca_not_before=now - self._sca_validity,
            now=now,
            request_id=request.request_id,
            new_refresh_hash=None if new_refresh_token is None else secret_hash(new_refresh_token),
        )
        refreshed = await self._store.refresh_soon(job)
        if refreshed is None:
            raise self._refusal(request, client_id, refresh_hash, requested_role)
        return token_response_body(
            access_token=access_token,
            expires_in=seconds_until(refreshed.access_expires_at, now),
            scope=refreshed.role,
            refresh_token=new_refresh_token or refresh_token,
        )

    def _refusal(
        self, request: TokenRequest, client_id: str, refresh_hash: str, requested_role: str | None
    ) -> OAuthError:
        """The precise reason the statement matched nothing. Client authentication errors
        come first (RFC 6749 §5.2 ``invalid_client``), then the token's."""
        certificate, now = request.certificate, request.now
        with request.services.engine.begin() as conn:
            authenticate_client(conn, certificate, client_id)
            grant = find_by_refresh_hash(conn, refresh_hash)
            if grant is None:
                replaced = find_by_previous_refresh_hash(conn, refresh_hash)
                if replaced is None or replaced.client_id != client_id:
                    return InvalidGrant("unknown refresh token")
                if revoke_grant(conn, replaced.id, now, reason=REFRESH_TOKEN_REUSE):
                    record_event(
                        conn,
                        now,
                        REFRESH_TOKEN_REUSED,
                        client_id=client_id,
                        org_id=replaced.org_id,
                        psu_id=replaced.psu_id,
                        request_id=request.request_id,
                        reason="a replaced refresh token was presented (OAuth 2.1 §6.1)",
                        detail={"revoked_grants": [replaced.id]},
                    )
                return InvalidGrant(
                    "the refresh token was already replaced: reuse detected, the authorization "
                    "is revoked"
                )
            problem = refresh_refusal(
                grant,
                client_id=client_id,
                certificate=certificate,
                requested_role=requested_role,
                now=now,
                sca_validity_days=self._sca_validity_days,
            )
        return problem or InvalidGrant("the refresh token changed during the request; retry")


__all__ = [
    "GRANT_TYPE",
    "REFRESH_TOKEN_REUSED",
    "RefreshTokenGrant",
    "refresh_refusal",
    "requested_role_scope",
]
