"""``grant_type=refresh_token``: a new access token without the PSU (RFC 6749 §6).

docs/decisions.md#refresh, after STET v1.4.2 Part I §3.4.3.4 as BPCE applies it: mTLS as for
every grant; the refresh token is valid (not revoked, not expired), belongs to this client and
organization; the PSU's last SCA is younger than ``sca_validity_days`` → a **new access token
and the same refresh token**, the previous access token dead at once, bound to the QWAC that
presented the refresh (RFC 8705 §3), with ``extended_transaction_history`` dropped. With
setting ``rotate_refresh_tokens`` the refresh token is replaced every time and a replaced one
coming back revokes the pair (OAuth 2.1 §6.1 reuse detection).

The rule itself, in Python and in SQL, is `stetgate.oauth.refreshable`. The accepting path is
one statement (`stetgate.oauth.refresh_store`); only when it matches nothing do ordinary queries
find out why, so the TPP gets a precise error and the audit trail a precise reason
(`refresh_refusal`).
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
from stetgate.oauth.clients import Client
from stetgate.oauth.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
)
from stetgate.oauth.form import required_parameter
from stetgate.oauth.refresh_store import RefreshStore
from stetgate.oauth.refreshable import Presenter, RefreshLimits, Refusal, refreshable_by
from stetgate.oauth.scopes import ROLE_FOR_SCOPE
from stetgate.oauth.token_endpoint import TokenRequest, seconds_until, token_response_body
from stetgate.oauth.token_pairs import (
    REFRESH_TOKEN_REUSE,
    TokenPair,
    find_by_previous_refresh_hash,
    find_by_refresh_hash,
    revoke_grant,
)
from stetgate.observability.audit import log_audit_event
from stetgate.secrets import new_secret, secret_hash
from stetgate.services import Services
from stetgate.store.audit import record_event
from stetgate.store.audit_events import REFRESH_TOKEN_REUSED, TOKEN_REFRESHED

GRANT_TYPE = "refresh_token"


def requested_role_scope(scope: str | None) -> str | None:
    """RFC 6749 §6 allows ``scope`` on refresh if it does not exceed the grant; BPCE sends none.
    Since a refreshed token carries only the role scope (``extended_transaction_history`` needs
    a fresh SCA, docs/decisions.md#refresh), the only acceptable value is that role scope."""
    if scope is None:
        return None
    items = scope.split()
    if len(items) != 1 or items[0] not in ROLE_FOR_SCOPE:
        raise InvalidScope(
            "on refresh, scope may only be the role scope (aisp or cbpii); "
            "extended_transaction_history needs a new authorization with SCA"
        )
    return items[0]


def presenter_of(
    client_id: str, certificate: Psd2Certificate, requested_role: str | None
) -> Presenter:
    """Who presents the refresh token: the request's ``client_id`` over this QWAC."""
    return Presenter(
        client_id, certificate.organization_identifier, role_scopes_of(certificate), requested_role
    )


def refusal_error(
    refusal: Refusal,
    grant: TokenPair | None,
    *,
    client_id: str,
    certificate: Psd2Certificate,
    limits: RefreshLimits,
) -> OAuthError:
    """The RFC 6749 §5.2 error for a `Refusal`, saying precisely what is wrong. ``grant`` is
    the pair found (None for `Refusal.UNKNOWN_TOKEN`)."""
    if grant is None or refusal is Refusal.UNKNOWN_TOKEN:
        return InvalidGrant("unknown refresh token")
    match refusal:
        case Refusal.OTHER_CLIENT:
            return InvalidGrant("the refresh token was issued to another client")
        case Refusal.OTHER_ORGANIZATION:
            return InvalidGrant("the refresh token was issued to another organization")
        case Refusal.REVOKED:
            return InvalidGrant(f"the refresh token is revoked ({grant.revoked_reason})")
        case Refusal.EXPIRED:
            return InvalidGrant(
                "the refresh token has expired: a new authorization with SCA is needed"
            )
        case Refusal.SCA_TOO_OLD:
            return InvalidGrant(
                "the PSU's last strong authentication is older than "
                f"{limits.sca_validity_days} days: a new authorization with SCA is needed"
            )
        case Refusal.CLIENT_INACTIVE:
            return UnauthorizedClient(f"client {client_id} is suspended or no longer registered")
        case Refusal.CLIENT_ORGANIZATION:
            return InvalidClient(
                f"certificate organizationIdentifier {certificate.organization_identifier} "
                f"does not match the organization of client {client_id}"
            )
        case Refusal.SCOPE_NOT_GRANTED:
            return InvalidScope(f"scope exceeds the grant (its role scope is {grant.role})")
        case Refusal.ROLE_NOT_ALLOWED:
            try:
                require_role_for_scope(certificate, grant.role)
            except OAuthError as exc:
                return exc
            return UnauthorizedClient(f"the certificate may not refresh a {grant.role} grant")


def refresh_refusal(
    grant: TokenPair,
    *,
    client: Client | None,
    client_id: str,
    certificate: Psd2Certificate,
    requested_role: str | None,
    now: datetime,
    limits: RefreshLimits,
) -> OAuthError | None:
    """Why ``client_id`` over ``certificate`` cannot refresh this pair now, or None when it
    can (RFC 6749 §6, §5.2): `refreshable_by`, as an OAuth error. ``client`` is the pair's
    client as registered (None if it is not)."""
    presenter = presenter_of(client_id, certificate, requested_role)
    refusal = refreshable_by(grant, client, presenter, now, limits)
    if refusal is None:
        return None
    return refusal_error(
        refusal, grant, client_id=client_id, certificate=certificate, limits=limits
    )


class RefreshTokenGrant:
    """The ``refresh_token`` `GrantHandler`; compiles its statement once per app."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self._limits = RefreshLimits.from_settings(settings)
        self._store = RefreshStore(
            services.engine,
            rotate=settings.rotate_refresh_tokens,
            limits=self._limits,
            lock_wait_seconds=settings.db_lock_timeout_ms / 1000,
        )
        self._rotate = settings.rotate_refresh_tokens
        self._access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)

    async def __call__(self, request: TokenRequest) -> dict[str, Any]:
        form = request.form
        client_id = required_client_id(form)
        refresh_token = required_parameter(form, "refresh_token")
        requested_role = requested_role_scope(form.get("scope"))
        certificate, now = request.certificate, request.now
        refresh_hash = secret_hash(refresh_token)
        access_token = new_secret()
        new_refresh_token = new_secret() if self._rotate else None
        job = self._store.job(
            refresh_hash=refresh_hash,
            presenter=presenter_of(client_id, certificate, requested_role),
            now=now,
            access_hash=secret_hash(access_token),
            access_expires_at=now + self._access_ttl,
            access_cnf=certificate.thumbprint_s256,
            request_id=request.request_id,
            new_refresh_hash=None if new_refresh_token is None else secret_hash(new_refresh_token),
        )
        refreshed = await self._store.refresh_soon(job)
        if refreshed is None:
            raise await request.services.blocking.run(
                self._refusal, request, client_id, refresh_hash, requested_role
            )
        # The audit row was written by the statement itself (`refresh_store._audit_from`);
        # its log line is written here, with the same fields.
        log_audit_event(
            TOKEN_REFRESHED,
            client_id=client_id,
            org_id=certificate.organization_identifier,
            psu_id=refreshed.psu_id,
            request_id=request.request_id,
            reason=None,
            detail={"grant_id": refreshed.grant_id},
        )
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
        come first (RFC 6749 §5.2 ``invalid_client``, raised), then the token's (returned).
        One transaction of ordinary queries (and, for a replaced token, its revocation):
        the slow path of refusals, run on the blocking pool, never on the event loop."""
        certificate, now = request.certificate, request.now
        with request.services.engine.begin() as conn:
            authenticated = authenticate_client(conn, certificate, client_id)
            grant = find_by_refresh_hash(conn, refresh_hash)
            if grant is None:
                replaced = find_by_previous_refresh_hash(conn, refresh_hash)
                if replaced is None or replaced.client_id != client_id:
                    return refusal_error(
                        Refusal.UNKNOWN_TOKEN,
                        None,
                        client_id=client_id,
                        certificate=certificate,
                        limits=self._limits,
                    )
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
                # The presenter's client: the pair's own, unless the pair is another client's
                # (refused as such before the client is looked at).
                client=authenticated.client,
                client_id=client_id,
                certificate=certificate,
                requested_role=requested_role,
                now=now,
                limits=self._limits,
            )
        return problem or InvalidGrant("the refresh token changed during the request; retry")


__all__ = [
    "GRANT_TYPE",
    "RefreshTokenGrant",
    "presenter_of",
    "refresh_refusal",
    "refusal_error",
    "requested_role_scope",
]
