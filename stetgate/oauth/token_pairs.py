"""Token pairs (the ``grants`` table): one row is one access token + refresh token pair.

docs/decisions.md#token-rules:
- **One valid pair per (PSU, TPP organization, role)**: `create_pair` revokes the active pair of
  the same triplet in the caller's transaction, so there is never a moment with two.
- **Revoking either token revokes both** (RFC 7009 §2.1 allows it; BPCE requires it): a pair is
  one row, so revocation is one ``UPDATE`` of ``revoked_at``.
- Tokens are opaque 256-bit secrets stored as SHA-256 digests only (`stetgate.secrets`).
- The access token is bound to the QWAC thumbprint (``access_cnf`` = ``x5t#S256``, RFC 8705
  §3); the refresh token to the client and its organizationIdentifier (``client_id``,
  ``org_id``), so a TPP that renews its QWAC can still refresh.
- ``last_used_at`` is the time the current access token was issued (creation or last refresh):
  it is what the PSU's "connected apps" page shows as "last used" and the ``iat`` of
  introspection (RFC 7662 §2.2).

Every function runs inside the caller's transaction (`Connection`), never commits, and takes
"now" from the caller (the injected clock). The refresh grant's hot path, a single statement,
lives in `stetgate.oauth.refresh_store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, and_, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from stetgate.secrets import new_id, new_secret, secret_hash
from stetgate.store.schema import authorization_codes, grants

# revoked_reason values (grants.revoked_reason, String(40))
SUPERSEDED = "superseded"
"""A new authorization for the same (PSU, organization, role) replaced the pair."""
REVOKED_BY_CLIENT = "revoked_by_client"
"""The TPP called the revocation endpoint (RFC 7009)."""
REVOKED_BY_PSU = "revoked_by_psu"
"""The PSU withdrew the access on the bank's "connected apps" page (STET §3.4.3.5 via BPCE)."""
CODE_REPLAY = "code_replay"
"""The authorization code of this pair was presented again (RFC 6749 §4.1.2)."""
REFRESH_TOKEN_REUSE = "refresh_token_reuse"  # noqa: S105 - a revocation reason
"""With rotation on, an already replaced refresh token came back (OAuth 2.1 §6.1)."""
CLIENT_REMOVED = "client_removed"
"""The operator removed the client (`stetgate clients remove`)."""

_GRANT_COLUMNS = (
    grants.c.id,
    grants.c.client_id,
    grants.c.org_id,
    grants.c.psu_id,
    grants.c.role,
    grants.c.scope,
    grants.c.sca_at,
    grants.c.created_at,
    grants.c.refresh_expires_at,
    grants.c.access_scope,
    grants.c.access_expires_at,
    grants.c.access_cnf,
    grants.c.last_used_at,
    grants.c.revoked_at,
    grants.c.revoked_reason,
)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """A token pair as stored, without its secrets (only their digests exist)."""

    id: str
    client_id: str
    org_id: str
    psu_id: str
    role: str
    """The role scope, ``aisp`` or ``cbpii`` (one pair per role,
    docs/decisions.md#one-pair-per-psu-organization-and-role)."""
    scope: str
    """Everything granted at the SCA (may include ``extended_transaction_history``)."""
    sca_at: datetime
    created_at: datetime
    refresh_expires_at: datetime
    access_scope: str
    """Scope of the current access token: ``scope`` right after the SCA, the role scope only
    after a refresh (``extended_transaction_history`` is dropped, docs/decisions.md#refresh)."""
    access_expires_at: datetime
    access_cnf: str
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None


@dataclass(frozen=True, slots=True)
class IssuedPair:
    """A freshly created pair and its two secrets (the only copies: returned to the TPP once)."""

    grant: TokenPair
    access_token: str
    refresh_token: str
    superseded: tuple[str, ...]
    """Ids of the pairs this one replaced (one valid pair per PSU, organization and role)."""


def _grant(row: RowMapping) -> TokenPair:
    return TokenPair(**{column.name: row[column.name] for column in _GRANT_COLUMNS})


def _active(now: datetime) -> ColumnElement[bool]:
    return and_(grants.c.revoked_at.is_(None), grants.c.refresh_expires_at > now)


def create_pair(
    conn: Connection,
    *,
    client_id: str,
    org_id: str,
    psu_id: str,
    role: str,
    scope: str,
    sca_at: datetime,
    refresh_expires_at: datetime,
    access_expires_at: datetime,
    access_cnf: str,
    now: datetime,
    code_hash: str | None = None,
) -> IssuedPair:
    """Issue a new pair for (PSU, organization, role), revoking the active one of that triplet.

    docs/decisions.md#one-pair-per-psu-organization-and-role: one valid pair per (PSU, TPP
    organization, role); the earlier pair stops working in the same transaction the new one
    appears in. The access token starts with the whole granted ``scope`` (RFC 6749 §5.1), bound
    to ``access_cnf``.
    """
    superseded = (
        conn.execute(
            update(grants)
            .where(
                grants.c.psu_id == psu_id,
                grants.c.org_id == org_id,
                grants.c.role == role,
                grants.c.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason=SUPERSEDED)
            .returning(grants.c.id)
        )
        .scalars()
        .all()
    )
    access_token, refresh_token = new_secret(), new_secret()
    grant = TokenPair(
        id=new_id(),
        client_id=client_id,
        org_id=org_id,
        psu_id=psu_id,
        role=role,
        scope=scope,
        sca_at=sca_at,
        created_at=now,
        refresh_expires_at=refresh_expires_at,
        access_scope=scope,
        access_expires_at=access_expires_at,
        access_cnf=access_cnf,
        last_used_at=now,
        revoked_at=None,
        revoked_reason=None,
    )
    conn.execute(
        insert(grants).values(
            **{column.name: getattr(grant, column.name) for column in _GRANT_COLUMNS},
            refresh_hash=secret_hash(refresh_token),
            access_hash=secret_hash(access_token),
            code_hash=code_hash,
        )
    )
    if code_hash is not None:
        conn.execute(
            update(authorization_codes)
            .where(authorization_codes.c.code_hash == code_hash)
            .values(grant_id=grant.id)
        )
    return IssuedPair(grant, access_token, refresh_token, tuple(superseded))


def revoke_grant(
    conn: Connection, grant_id: str, now: datetime, *, reason: str, psu_id: str | None = None
) -> bool:
    """Revoke one pair (both tokens). ``psu_id`` restricts it to that PSU's pairs, for the
    "connected apps" page. False when there was no such active pair."""
    conditions = [grants.c.id == grant_id, grants.c.revoked_at.is_(None)]
    if psu_id is not None:
        conditions.append(grants.c.psu_id == psu_id)
    result = conn.execute(
        update(grants).where(*conditions).values(revoked_at=now, revoked_reason=reason)
    )
    return result.rowcount > 0


def revoke_by_token_hash(
    conn: Connection, token_hash: str, now: datetime, *, reason: str, client_id: str | None = None
) -> TokenPair | None:
    """Revoke the pair holding this access or refresh token (RFC 7009 §2.1: "revoking either
    token revokes both" is BPCE's rule). ``client_id`` limits it to that client's pairs, so a
    TPP cannot revoke another TPP's tokens. Returns the revoked pair, or None."""
    conditions = [
        or_(grants.c.access_hash == token_hash, grants.c.refresh_hash == token_hash),
        grants.c.revoked_at.is_(None),
    ]
    if client_id is not None:
        conditions.append(grants.c.client_id == client_id)
    row = (
        conn.execute(
            update(grants)
            .where(*conditions)
            .values(revoked_at=now, revoked_reason=reason)
            .returning(*_GRANT_COLUMNS)
        )
        .mappings()
        .first()
    )
    return None if row is None else _grant(row)


def revoke_all_for_client(conn: Connection, client_id: str, now: datetime, *, reason: str) -> int:
    """Revoke every active pair of a client (client removed or deleted); returns how many."""
    result = conn.execute(
        update(grants)
        .where(grants.c.client_id == client_id, grants.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(result.rowcount)


def list_active_grants_for_psu(conn: Connection, psu_id: str, now: datetime) -> list[TokenPair]:
    """The PSU's valid authorizations (not revoked, refresh token not expired), newest first:
    what the "connected apps" page lists."""
    rows = (
        conn.execute(
            select(*_GRANT_COLUMNS)
            .where(grants.c.psu_id == psu_id, _active(now))
            .order_by(grants.c.created_at.desc(), grants.c.id)
        )
        .mappings()
        .all()
    )
    return [_grant(row) for row in rows]


def _find(conn: Connection, *conditions: ColumnElement[bool]) -> TokenPair | None:
    row = conn.execute(select(*_GRANT_COLUMNS).where(*conditions)).mappings().first()
    return None if row is None else _grant(row)


def find_active_access(conn: Connection, access_hash: str, now: datetime) -> TokenPair | None:
    """The pair whose current access token has this digest, if that token is still valid
    (not revoked, not expired). A replaced access token no longer has a row: it is dead."""
    return _find(
        conn,
        grants.c.access_hash == access_hash,
        grants.c.revoked_at.is_(None),
        grants.c.access_expires_at > now,
    )


def find_by_refresh_hash(conn: Connection, refresh_hash: str) -> TokenPair | None:
    """The pair holding this refresh token, whatever its state (for precise errors)."""
    return _find(conn, grants.c.refresh_hash == refresh_hash)


def find_by_previous_refresh_hash(conn: Connection, refresh_hash: str) -> TokenPair | None:
    """The pair whose refresh token *was* this one before the last rotation."""
    return _find(conn, grants.c.previous_refresh_hash == refresh_hash)


def find_by_code_hash(conn: Connection, code_hash: str) -> TokenPair | None:
    """The pair issued from this authorization code (RFC 6749 §4.1.2 replay revocation)."""
    return _find(conn, grants.c.code_hash == code_hash)


def get_grant(conn: Connection, grant_id: str) -> TokenPair | None:
    return _find(conn, grants.c.id == grant_id)


__all__ = [
    "CLIENT_REMOVED",
    "CODE_REPLAY",
    "REFRESH_TOKEN_REUSE",
    "REVOKED_BY_CLIENT",
    "REVOKED_BY_PSU",
    "SUPERSEDED",
    "IssuedPair",
    "TokenPair",
    "create_pair",
    "find_active_access",
    "find_by_code_hash",
    "find_by_previous_refresh_hash",
    "find_by_refresh_hash",
    "get_grant",
    "list_active_grants_for_psu",
    "revoke_all_for_client",
    "revoke_by_token_hash",
    "revoke_grant",
]
