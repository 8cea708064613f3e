"""``grant_type=authorization_code``: exchanging the PSU's code for a token pair.

RFC 6749 §4.1.3 as profiled by STET v1.4.2 Part I §3.4 (BPCE) and docs/decisions.md#code-exchange.
Validate everything first (`check_code_redemption`, a pure function), then act in one
transaction: claim the code with one atomic ``UPDATE … WHERE used_at IS NULL`` (so two
concurrent redemptions cannot both succeed), revoke the earlier pair of the same (PSU,
organization, role), insert the new pair, for ``aisp`` forget the consent the AISP forwarded
under the earlier authorization (`forget_forwarded_consent`), audit ``token_issued``. A refused
request changes nothing — except a replayed code, whose pair is revoked (RFC 6749 §4.1.2: "If an
authorization code is used more than once, the authorization server MUST deny the request and
SHOULD revoke (when possible) all tokens previously issued based on that authorization code").

Replay revocation happens only when the client that replays is the client the code was issued
to (authenticated by its QWAC): a code seen by someone else (browser history, a log) must not
let them revoke the PSU's authorization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from stetgate.eidas import Psd2Certificate
from stetgate.oauth.client_auth import (
    authenticate_client,
    require_role_for_scope,
    required_client_id,
)
from stetgate.oauth.clients import Client
from stetgate.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope
from stetgate.oauth.form import required_parameter
from stetgate.oauth.pkce import S256, is_valid_verifier, verifier_matches
from stetgate.oauth.scopes import AISP, ROLE_FOR_SCOPE, format_scope
from stetgate.oauth.token_endpoint import TokenRequest, seconds_until, token_response_body
from stetgate.oauth.token_pairs import CODE_REPLAY, create_pair, find_by_code_hash, revoke_grant
from stetgate.secrets import secret_hash
from stetgate.settings import Settings
from stetgate.store.audit import record_event
from stetgate.store.audit_events import CODE_REPLAYED, TOKEN_ISSUED
from stetgate.store.schema import authorization_codes, psd2_consents

GRANT_TYPE = "authorization_code"


@dataclass(frozen=True, slots=True)
class StoredCode:
    """An ``authorization_codes`` row (the code itself exists only as its digest)."""

    code_hash: str
    client_id: str
    org_id: str
    psu_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    sca_at: datetime
    expires_at: datetime
    used_at: datetime | None
    grant_id: str | None


@dataclass(frozen=True, slots=True)
class Redemption:
    """What a valid code is worth: the pair's role scope and the scope of its tokens."""

    code: StoredCode
    role: str
    scope: str


class CodeReplayed(InvalidGrant):
    """RFC 6749 §4.1.2: the code was already exchanged; its pair must be revoked."""


def find_code(conn: Connection, code_hash: str) -> StoredCode | None:
    row = (
        conn.execute(
            select(authorization_codes).where(authorization_codes.c.code_hash == code_hash)
        )
        .mappings()
        .first()
    )
    return None if row is None else StoredCode(**dict(row))


def claim_code(conn: Connection, code_hash: str, now: datetime) -> bool:
    """Mark the code used, atomically: true for exactly one caller, ever (RFC 6749 §4.1.2
    "single use"). On PostgreSQL a concurrent claimer waits for the row lock and then sees
    ``used_at`` set; on SQLite ``BEGIN IMMEDIATE`` serializes the transactions."""
    result = conn.execute(
        update(authorization_codes)
        .where(
            authorization_codes.c.code_hash == code_hash, authorization_codes.c.used_at.is_(None)
        )
        .values(used_at=now)
    )
    return result.rowcount == 1


def role_scope_of(scope: str) -> str:
    """The single role scope (``aisp`` / ``cbpii``) of a granted scope string."""
    roles = [item for item in scope.split() if item in ROLE_FOR_SCOPE]
    if len(roles) != 1:
        raise InvalidGrant("the authorization code carries no single role scope")
    return roles[0]


def check_code_redemption(
    code: StoredCode | None,
    *,
    client: Client,
    certificate: Psd2Certificate,
    redirect_uri: str,
    code_verifier: str | None,
    requested_scope: str | None,
    now: datetime,
) -> Redemption:
    """Every rule of the exchange, in RFC 6749 §4.1.3 order; raises the OAuth error.

    - the code exists and was issued to this client (§4.1.3), has not been used (§4.1.2,
      `CodeReplayed`) and has not expired (docs/decisions.md#lifetimes: 60 s);
    - ``redirect_uri`` is identical to the one of the authorization request (§4.1.3);
    - PKCE (RFC 7636 §4.6): when a challenge was sent, the S256 of ``code_verifier`` equals it;
      when none was sent, a ``code_verifier`` is refused (OAuth 2.1 §4.1.3: a downgrade sign),
      and a client registered with ``require_pkce`` must have sent one;
    - ``scope`` is not needed (BPCE); when present it must not exceed the granted scope and
      must keep its role scope (``invalid_scope``, docs/decisions.md#code-exchange);
    - the QWAC carries the PSD2 role of that scope (``unauthorized_client``).
    """
    if code is None:
        raise InvalidGrant("unknown authorization code")
    if code.client_id != client.client_id:
        raise InvalidGrant("the authorization code was issued to another client")
    if code.used_at is not None:
        raise CodeReplayed(
            "the authorization code was already used; the tokens issued from it are revoked"
        )
    if now >= code.expires_at:
        raise InvalidGrant("the authorization code has expired")
    if code.org_id != certificate.organization_identifier:
        raise InvalidGrant("the authorization code was issued for another organization")
    if redirect_uri != code.redirect_uri:
        raise InvalidGrant("redirect_uri differs from the one of the authorization request")
    _check_pkce(code, client, code_verifier)
    role = role_scope_of(code.scope)
    scope = code.scope
    if requested_scope is not None:
        requested = requested_scope.split()
        granted = set(code.scope.split())
        if not set(requested) <= granted:
            raise InvalidScope(f"scope exceeds what the PSU granted ({code.scope})")
        if role not in requested:
            raise InvalidScope(f"scope must keep the role scope {role}")
        scope = format_scope(set(requested))
    require_role_for_scope(certificate, role)
    return Redemption(code=code, role=role, scope=scope)


def _check_pkce(code: StoredCode, client: Client, code_verifier: str | None) -> None:
    if code.code_challenge is None:
        if code_verifier is not None:
            raise InvalidGrant("code_verifier sent, but no code_challenge was sent at /authorize")
        if client.require_pkce:
            raise InvalidGrant("this client must use PKCE, and the authorization had no challenge")
        return
    if code.code_challenge_method != S256:
        raise InvalidGrant("only the S256 code_challenge_method is accepted")
    if code_verifier is None:
        raise InvalidGrant("code_verifier is required: a code_challenge was sent at /authorize")
    if not is_valid_verifier(code_verifier):
        raise InvalidRequest(
            "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)"
        )
    if not verifier_matches(code_verifier, code.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge (RFC 7636 §4.6)")


def pair_lifetimes(
    settings: Settings, sca_at: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """(refresh token expiry, access token expiry). The refresh token lives as long as the
    SCA is valid (``sca_validity_days`` after it, docs/decisions.md#lifetimes); the access token
    ``access_token_ttl_seconds``, never beyond the refresh token."""
    refresh_expires_at = sca_at + timedelta(days=settings.sca_validity_days)
    access_expires_at = min(
        now + timedelta(seconds=settings.access_token_ttl_seconds), refresh_expires_at
    )
    return refresh_expires_at, access_expires_at


def _revoke_replayed(conn: Connection, code: StoredCode, now: datetime) -> list[str]:
    """Revoke the pair issued from a replayed code (found by the code's ``grant_id`` or by the
    pair's ``code_hash``)."""
    ids = {code.grant_id} if code.grant_id else set()
    issued = find_by_code_hash(conn, code.code_hash)
    if issued is not None:
        ids.add(issued.id)
    return [
        grant_id
        for grant_id in sorted(ids)
        if revoke_grant(conn, grant_id, now, reason=CODE_REPLAY)
    ]


class AuthorizationCodeGrant:
    """The ``authorization_code`` `GrantHandler`: the form is checked on the event loop, the
    whole exchange (client binding, code lookup and claim, the pair, the audit) runs in one
    transaction, in one hop to the blocking pool."""

    async def __call__(self, request: TokenRequest) -> dict[str, Any]:
        form = request.form
        client_id = required_client_id(form)
        code_value = required_parameter(form, "code")
        redirect_uri = required_parameter(
            form,
            "redirect_uri",
            "redirect_uri is required: it was sent at /authorize (RFC 6749 §4.1.3)",
        )
        return await request.services.blocking.run(
            self._redeem, request, client_id, secret_hash(code_value), redirect_uri
        )

    def _redeem(
        self, request: TokenRequest, client_id: str, code_hash: str, redirect_uri: str
    ) -> dict[str, Any]:
        """The exchange, in one transaction (module docstring); raises the OAuth error after
        committing the revocation of a replayed code's pair."""
        form = request.form
        services, now, certificate = request.services, request.now, request.certificate
        replayed: CodeReplayed | None = None
        with services.engine.begin() as conn:
            client = authenticate_client(conn, certificate, client_id).client
            code = find_code(conn, code_hash)
            try:
                redemption = check_code_redemption(
                    code,
                    client=client,
                    certificate=certificate,
                    redirect_uri=redirect_uri,
                    code_verifier=form.get("code_verifier"),
                    requested_scope=form.get("scope"),
                    now=now,
                )
                if not claim_code(conn, code_hash, now):
                    raise CodeReplayed(
                        "the authorization code was already used; the tokens issued from it "
                        "are revoked"
                    )
            except CodeReplayed as exc:
                assert code is not None
                revoked = _revoke_replayed(conn, find_code(conn, code_hash) or code, now)
                record_event(
                    conn,
                    now,
                    CODE_REPLAYED,
                    client_id=client.client_id,
                    org_id=client.org_id,
                    psu_id=code.psu_id,
                    request_id=request.request_id,
                    reason="authorization code used twice (RFC 6749 §4.1.2)",
                    detail={"revoked_grants": revoked},
                )
                replayed = exc
            else:
                body = self._issue(conn, request, client, redemption)
        if replayed is not None:
            raise replayed
        return body

    def _issue(
        self, conn: Connection, request: TokenRequest, client: Client, redemption: Redemption
    ) -> dict[str, Any]:
        now, code = request.now, redemption.code
        refresh_expires_at, access_expires_at = pair_lifetimes(
            request.services.settings, code.sca_at, now
        )
        pair = create_pair(
            conn,
            client_id=client.client_id,
            org_id=code.org_id,
            psu_id=code.psu_id,
            role=redemption.role,
            scope=redemption.scope,
            sca_at=code.sca_at,
            refresh_expires_at=refresh_expires_at,
            access_expires_at=access_expires_at,
            access_cnf=request.certificate.thumbprint_s256,
            now=now,
            code_hash=code.code_hash,
        )
        consent_reset = redemption.role == AISP and forget_forwarded_consent(
            conn, psu_id=code.psu_id, org_id=code.org_id
        )
        record_event(
            conn,
            now,
            TOKEN_ISSUED,
            client_id=client.client_id,
            org_id=code.org_id,
            psu_id=code.psu_id,
            request_id=request.request_id,
            detail={
                "grant_id": pair.grant.id,
                "grant_type": GRANT_TYPE,
                "scope": redemption.scope,
                "superseded": list(pair.superseded),
                "forwarded_consent_reset": consent_reset,
            },
        )
        return token_response_body(
            access_token=pair.access_token,
            expires_in=seconds_until(access_expires_at, now),
            scope=redemption.scope,
            refresh_token=pair.refresh_token,
        )


def forget_forwarded_consent(conn: Connection, *, psu_id: str, org_id: str) -> bool:
    """Drop the STET ``PUT /consents`` the AISP forwarded for this PSU under an earlier
    authorization; True when there was one.

    docs/decisions.md#consent: a new authorization with SCA is the PSU's new decision, so the
    account choices forwarded under the previous one do not carry over to it (STET v1.4.2
    Part II §4.1: the consent is given within the authorization; BPCE AISP-mix: until the AISP
    forwards a consent, ``GET /accounts`` lists the accounts without balances). One statement
    in the code exchange's transaction: never on the refresh path.
    """
    result = conn.execute(
        delete(psd2_consents).where(
            psd2_consents.c.psu_id == psu_id, psd2_consents.c.org_id == org_id
        )
    )
    return result.rowcount > 0


__all__ = [
    "GRANT_TYPE",
    "AuthorizationCodeGrant",
    "CodeReplayed",
    "Redemption",
    "StoredCode",
    "check_code_redemption",
    "claim_code",
    "find_code",
    "forget_forwarded_consent",
    "pair_lifetimes",
    "role_scope_of",
]
