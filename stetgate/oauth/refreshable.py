"""When a refresh token may be refreshed: the rule, written once, in Python and in SQL.

docs/decisions.md#refresh, after RFC 6749 §6 and STET v1.4.2 Part I §3.4.3.4 as BPCE applies
it. A token pair may be refreshed at ``now`` when

- it is not revoked (RFC 7009; one pair per PSU, organization and role);
- its refresh token has not expired: ``now < refresh_expires_at`` (RFC 6749 §10.4);
- the PSU's last SCA is younger than ``sca_validity_days``: ``sca_at > now - sca_validity_days``,
  so at exactly ``sca_validity_days`` it is too old (PSD2 RTS Art. 10/10a via STET §3.4.3.4;
  the setting applies to existing pairs, so it may be shorter than the refresh token's life);
- its client is registered and active (a suspended or removed client refreshes nothing) and
  still linked to the pair's organization;

this is `refreshable`, and what introspection reports as ``active`` for a refresh token
(RFC 7662 §2.2). Refreshing also needs the right presenter (`refreshable_by`): the request's
``client_id`` is the pair's client, the QWAC's organizationIdentifier is the pair's (so the
client's too: RFC 8705 §2, "directly or indirectly"), and the QWAC carries the pair's PSD2 role
(ETSI TS 119 495 §5.1), which a ``scope`` parameter, if sent, must name.

The refresh grant's hot path checks all of it in the ``WHERE`` clause of one ``UPDATE``
(`stetgate.oauth.refresh_store`): `REFRESHABLE_BY_SQL` below, with the named parameters of
`statement_parameters`, computed from the same `Presenter`, ``now`` and `RefreshLimits` as the
Python functions take. Only when that statement matches nothing does `refreshable_by` run, on
the stored row, to say why. ``tests/unit/oauth/test_refreshable.py`` runs one case table
(boundaries to the microsecond, every refusal, rotation) against both, on SQLite and
PostgreSQL; change the two together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import String, bindparam, exists
from sqlalchemy.sql.elements import ColumnElement

from stetgate.oauth.clients import CLIENT_ACTIVE, Client
from stetgate.oauth.token_pairs import TokenPair
from stetgate.settings import Settings
from stetgate.store.schema import UtcDateTime, clients, grants


class Refusal(StrEnum):
    """Why a refresh token cannot be refreshed (first failing condition, owner checks first,
    so another client learns nothing about the pair's state)."""

    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 - a refusal name
    """No pair holds this refresh token (never issued, purged, or replaced by a rotation)."""
    OTHER_CLIENT = "other_client"
    OTHER_ORGANIZATION = "other_organization"
    """The QWAC's organizationIdentifier is not the pair's."""
    REVOKED = "revoked"
    EXPIRED = "expired"
    SCA_TOO_OLD = "sca_too_old"
    CLIENT_INACTIVE = "client_inactive"
    """The pair's client is suspended or no longer registered."""
    CLIENT_ORGANIZATION = "client_organization"
    """The client is no longer linked to the pair's (and the QWAC's) organization."""
    SCOPE_NOT_GRANTED = "scope_not_granted"
    """``scope`` was sent and is not the pair's role scope."""
    ROLE_NOT_ALLOWED = "role_not_allowed"
    """The QWAC does not carry the PSD2 role of the pair's role scope."""


@dataclass(frozen=True, slots=True)
class RefreshLimits:
    """The settings the rule reads."""

    sca_validity_days: int
    _sca_validity: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sca_validity", timedelta(days=self.sca_validity_days))

    @classmethod
    def from_settings(cls, settings: Settings) -> RefreshLimits:
        return cls(sca_validity_days=settings.sca_validity_days)

    def sca_not_before(self, now: datetime) -> datetime:
        """An SCA at or before this moment is too old to refresh at ``now``."""
        return now - self._sca_validity


class Presenter(NamedTuple):
    """Who presents the refresh token (a named tuple: built on every refresh, it costs a
    third of a frozen dataclass)."""

    client_id: str
    """The request's ``client_id``."""
    org_id: str
    """The organizationIdentifier of the QWAC of the TLS session."""
    role_scopes: frozenset[str]
    """The role scopes the QWAC's PSD2 roles allow (`client_auth.role_scopes_of`)."""
    requested_role: str | None = None
    """The request's ``scope``, already checked to be one role scope, or None."""


# --- Python ---------------------------------------------------------------------------------


def refreshable(
    pair: TokenPair, client: Client | None, now: datetime, limits: RefreshLimits
) -> Refusal | None:
    """Why ``pair`` cannot be refreshed at ``now`` whoever presents it, or None when it can.
    ``client`` is the pair's client as registered, None when it is not (any more)."""
    if pair.revoked_at is not None:
        return Refusal.REVOKED
    if not now < pair.refresh_expires_at:
        return Refusal.EXPIRED
    if not pair.sca_at > limits.sca_not_before(now):
        return Refusal.SCA_TOO_OLD
    if client is None or client.status != CLIENT_ACTIVE:
        return Refusal.CLIENT_INACTIVE
    if client.org_id != pair.org_id:
        return Refusal.CLIENT_ORGANIZATION
    return None


def refreshable_by(
    pair: TokenPair,
    client: Client | None,
    presenter: Presenter,
    now: datetime,
    limits: RefreshLimits,
) -> Refusal | None:
    """Why ``presenter`` cannot refresh ``pair`` at ``now``, or None when it can: the whole
    rule of the refresh statement. ``client`` is the pair's client as registered, or None."""
    if pair.client_id != presenter.client_id:
        return Refusal.OTHER_CLIENT
    if pair.org_id != presenter.org_id:
        return Refusal.OTHER_ORGANIZATION
    refusal = refreshable(pair, client, now, limits)
    if refusal is not None:
        return refusal
    if presenter.requested_role is not None and presenter.requested_role != pair.role:
        return Refusal.SCOPE_NOT_GRANTED
    if pair.role not in presenter.role_scopes:
        return Refusal.ROLE_NOT_ALLOWED
    return None


# --- SQL: the same rule as WHERE conditions on ``grants`` ----------------------------------

NOW = bindparam("now", type_=UtcDateTime())
SCA_NOT_BEFORE = bindparam("sca_not_before", type_=UtcDateTime())
CLIENT_ID = bindparam("client_id", type_=String())
ORG_ID = bindparam("org_id", type_=String())
ROLE_SLOTS = (bindparam("role_a", type_=String()), bindparam("role_b", type_=String()))
"""The role scopes the presenter may refresh, in two fixed slots ("" never matches), so the
statement's shape never changes."""

REFRESHABLE_BY_SQL: tuple[ColumnElement[bool], ...] = (
    grants.c.revoked_at.is_(None),  # REVOKED
    grants.c.refresh_expires_at > NOW,  # EXPIRED
    grants.c.sca_at > SCA_NOT_BEFORE,  # SCA_TOO_OLD
    grants.c.client_id == CLIENT_ID,  # OTHER_CLIENT
    grants.c.org_id == ORG_ID,  # OTHER_ORGANIZATION
    grants.c.role.in_(ROLE_SLOTS),  # SCOPE_NOT_GRANTED, ROLE_NOT_ALLOWED
    exists().where(
        clients.c.client_id == grants.c.client_id,
        clients.c.status == CLIENT_ACTIVE,  # CLIENT_INACTIVE
        clients.c.org_id == ORG_ID,  # CLIENT_ORGANIZATION (with grants.org_id == ORG_ID)
    ),
)
"""`refreshable_by` as conditions on the ``grants`` row (cheapest first), for the parameters
of `statement_parameters`."""

_ROLE_SLOTS: dict[frozenset[str], tuple[str, str]] = {}


def role_slots(role_scopes: frozenset[str]) -> tuple[str, str]:
    """``role_scopes`` (at most two: ``aisp``, ``cbpii``) as the statement's two slots."""
    slots = _ROLE_SLOTS.get(role_scopes)
    if slots is None:
        if len(role_scopes) > len(ROLE_SLOTS):
            raise ValueError(f"more role scopes than slots: {sorted(role_scopes)}")
        padded = [*sorted(role_scopes), "", ""]
        slots = _ROLE_SLOTS[role_scopes] = (padded[0], padded[1])
    return slots


def statement_parameters(
    presenter: Presenter, now: datetime, limits: RefreshLimits
) -> dict[str, Any]:
    """The values of `REFRESHABLE_BY_SQL`'s parameters, by name."""
    allowed = presenter.role_scopes
    if presenter.requested_role is not None:
        allowed = allowed & {presenter.requested_role}
    role_a, role_b = role_slots(allowed)
    return {
        "now": now,
        "sca_not_before": limits.sca_not_before(now),
        "client_id": presenter.client_id,
        "org_id": presenter.org_id,
        "role_a": role_a,
        "role_b": role_b,
    }


__all__ = [
    "REFRESHABLE_BY_SQL",
    "Presenter",
    "RefreshLimits",
    "Refusal",
    "refreshable",
    "refreshable_by",
    "role_slots",
    "statement_parameters",
]
