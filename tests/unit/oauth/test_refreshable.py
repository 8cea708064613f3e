"""The refresh rule's case table, run against its Python and its SQL on each database.

`stetgate.oauth.refreshable` writes the rule twice: as Python (`refreshable_by`, which explains
a refusal, and `refreshable`, introspection's ``active``) and as the ``WHERE`` clause of the
one-statement refresh (`RefreshStore`). Every row below is set up in the database, then:

- the Python rule, given the pair and client as read back from that database, must give the
  row's expected refusal (or none);
- the refresh statement must accept exactly the rows the Python accepts, and change nothing
  (no row, no audit event) for the others;
- introspection must call the refresh token active exactly when the pair itself is refreshable
  (whoever presents it).

Times are to the microsecond (SQLite compares stored text, PostgreSQL ``timestamptz``), and all
come from the test's frozen clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from stetgate.clock import FrozenClock
from stetgate.oauth.clients import CLIENT_SUSPENDED, get_client
from stetgate.oauth.introspect import active_pair
from stetgate.oauth.refresh_store import RefreshStore
from stetgate.oauth.refreshable import (
    Presenter,
    RefreshLimits,
    Refusal,
    refreshable,
    refreshable_by,
)
from stetgate.oauth.token_pairs import (
    REVOKED_BY_PSU,
    IssuedPair,
    create_pair,
    find_by_refresh_hash,
    revoke_grant,
)
from stetgate.secrets import new_secret, secret_hash
from stetgate.store.schema import audit_events, grants
from tests.unit.oauth.conftest import client, store_client

pytestmark = pytest.mark.postgres  # the refresh statement's SQL and each dialect's datetimes

LIMITS = RefreshLimits(sca_validity_days=90)
LIMIT = timedelta(days=90)
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
BOTH_ROLES = frozenset({"aisp", "cbpii"})


PRESENTER_REFUSALS = frozenset(
    {
        Refusal.OTHER_CLIENT,
        Refusal.OTHER_ORGANIZATION,
        Refusal.SCOPE_NOT_GRANTED,
        Refusal.ROLE_NOT_ALLOWED,
    }
)
"""Refusals about who presents the token, not about the pair: introspection says active."""


@dataclass(frozen=True)
class Case:
    """One situation at the moment of the refresh; the defaults are a refreshable pair."""

    id: str
    expected: Refusal | None
    sca_age: timedelta = timedelta(days=1)
    """Age of the pair's SCA when the refresh is tried."""
    refresh_left: timedelta = timedelta(days=30)
    """Time until the refresh token expires (zero or less: expired)."""
    revoked: bool = False
    client: str = "active"
    """The pair's client: ``active``, ``suspended``, ``removed`` (no longer registered), or
    ``moved`` (registered for another organization than the pair's)."""
    presenter_client: str = "own"
    """``own``, or ``other``: another active client of the same organization."""
    presenter_org: str = "own"
    """``own``, or ``other``: a QWAC of another organization."""
    certificate_roles: frozenset[str] = BOTH_ROLES
    requested_role: str | None = None
    role: str = "aisp"
    rotate: bool = False
    """Rotation on: the pair is refreshed once before the tried refresh."""
    presented: str = "current"
    """The refresh token presented: ``current``, ``previous`` (rotated out) or ``unknown``."""
    active: bool | None = None
    """Introspection's ``active`` for the presented token; by default, true when nothing but
    the presenter is refused (`PRESENTER_REFUSALS`)."""

    @property
    def expected_active(self) -> bool:
        if self.active is not None:
            return self.active
        return self.expected is None or self.expected in PRESENTER_REFUSALS


CASES = [
    Case("fresh_pair", None),
    Case("cbpii_pair", None, role="cbpii"),
    # the PSU's last SCA against sca_validity_days
    Case("sca_one_second_inside_the_limit", None, sca_age=LIMIT - SECOND),
    Case("sca_one_microsecond_inside_the_limit", None, sca_age=LIMIT - MICROSECOND),
    Case("sca_exactly_at_the_limit", Refusal.SCA_TOO_OLD, sca_age=LIMIT),
    Case("sca_one_microsecond_past_the_limit", Refusal.SCA_TOO_OLD, sca_age=LIMIT + MICROSECOND),
    Case("sca_one_second_past_the_limit", Refusal.SCA_TOO_OLD, sca_age=LIMIT + SECOND),
    Case("sca_far_past_the_limit", Refusal.SCA_TOO_OLD, sca_age=2 * LIMIT, refresh_left=LIMIT),
    # the refresh token's own expiry
    Case("refresh_expires_in_one_second", None, refresh_left=SECOND),
    Case("refresh_expires_in_one_microsecond", None, refresh_left=MICROSECOND),
    Case("refresh_expires_now", Refusal.EXPIRED, refresh_left=timedelta(0)),
    Case("refresh_expired_one_microsecond_ago", Refusal.EXPIRED, refresh_left=-MICROSECOND),
    Case("refresh_expired_one_second_ago", Refusal.EXPIRED, refresh_left=-SECOND),
    Case("expired_and_sca_too_old", Refusal.EXPIRED, sca_age=LIMIT, refresh_left=timedelta(0)),
    # the pair's state
    Case("revoked", Refusal.REVOKED, revoked=True),
    Case("revoked_and_sca_too_old", Refusal.REVOKED, revoked=True, sca_age=2 * LIMIT),
    # its client
    Case("client_suspended", Refusal.CLIENT_INACTIVE, client="suspended"),
    Case("client_removed", Refusal.CLIENT_INACTIVE, client="removed"),
    Case("client_moved_to_another_organization", Refusal.CLIENT_ORGANIZATION, client="moved"),
    Case("suspended_and_sca_too_old", Refusal.SCA_TOO_OLD, client="suspended", sca_age=LIMIT),
    # who presents it
    Case("another_client_presents", Refusal.OTHER_CLIENT, presenter_client="other"),
    Case("another_organization_presents", Refusal.OTHER_ORGANIZATION, presenter_org="other"),
    Case(
        "another_client_presents_a_revoked_pair",
        Refusal.OTHER_CLIENT,
        presenter_client="other",
        revoked=True,
        active=False,
    ),
    Case("certificate_with_only_the_pair_role", None, certificate_roles=frozenset({"aisp"})),
    Case(
        "certificate_without_the_pair_role",
        Refusal.ROLE_NOT_ALLOWED,
        certificate_roles=frozenset({"cbpii"}),
    ),
    Case("certificate_without_any_role", Refusal.ROLE_NOT_ALLOWED, certificate_roles=frozenset()),
    Case("scope_is_the_pair_role", None, requested_role="aisp"),
    Case("scope_is_another_role", Refusal.SCOPE_NOT_GRANTED, requested_role="cbpii"),
    Case(
        "scope_is_a_role_the_certificate_lacks",
        Refusal.ROLE_NOT_ALLOWED,
        requested_role="aisp",
        certificate_roles=frozenset({"cbpii"}),
    ),
    # which token
    Case("unknown_token", Refusal.UNKNOWN_TOKEN, presented="unknown"),
    Case("rotation_current_token", None, rotate=True),
    Case("rotation_previous_token", Refusal.UNKNOWN_TOKEN, rotate=True, presented="previous"),
    Case("rotation_current_token_sca_too_old", Refusal.SCA_TOO_OLD, rotate=True, sca_age=LIMIT),
]


@dataclass
class Row:
    """One case set up in the database."""

    case: Case
    presented_hash: str
    presenter: Presenter


def _set_up(
    engine: Engine,
    index: int,
    case: Case,
    rotating: RefreshStore,
    now: datetime,
    setup_at: datetime,
) -> Row:
    """Clients and pair of one case (its own organization, so cases do not meet), as they are
    at ``now``, the moment of the tried refresh; anything done before happens at ``setup_at``."""
    org, other_org = f"PSDFR-ACPR-{10000 + index}", f"PSDFR-ACPR-{20000 + index}"
    client_id = f"app-{index}"
    if case.client != "removed":
        status = CLIENT_SUSPENDED if case.client == "suspended" else "active"
        owner_org = other_org if case.client == "moved" else org
        store_client(engine, client(client_id, owner_org, origin="register", status=status))
    store_client(engine, client(f"{client_id}-other", org, origin="register"))
    sca_at = now - case.sca_age
    with engine.begin() as conn:
        pair = create_pair(
            conn,
            client_id=client_id,
            org_id=org,
            psu_id=f"psu-{index}",
            role=case.role,
            scope=case.role,
            sca_at=sca_at,
            refresh_expires_at=now + case.refresh_left,
            access_expires_at=min(setup_at + timedelta(hours=1), now + case.refresh_left),
            access_cnf="cnf-1",
            now=min(setup_at, sca_at),
        )
        if case.revoked:
            assert revoke_grant(conn, pair.grant.id, setup_at, reason=REVOKED_BY_PSU)
    presented = secret_hash(pair.refresh_token)
    if case.rotate:
        presented = _rotate(rotating, pair, client_id, org, setup_at, case.presented)
    if case.presented == "unknown":
        presented = secret_hash(new_secret())
    presenter = Presenter(
        client_id=f"{client_id}-other" if case.presenter_client == "other" else client_id,
        org_id=other_org if case.presenter_org == "other" else org,
        role_scopes=case.certificate_roles,
        requested_role=case.requested_role,
    )
    return Row(case, presented, presenter)


def _rotate(
    store: RefreshStore, pair: IssuedPair, client_id: str, org: str, at: datetime, presented: str
) -> str:
    """Refresh once with rotation on; the digest of the token to present afterwards."""
    rotated = secret_hash(new_secret())
    presenter = Presenter(client_id, org, BOTH_ROLES)
    done = store.refresh(_job(store, secret_hash(pair.refresh_token), presenter, at, rotated))
    assert done is not None, "the rotation before the tried refresh must succeed"
    return secret_hash(pair.refresh_token) if presented == "previous" else rotated


def _job(
    store: RefreshStore,
    refresh_hash: str,
    presenter: Presenter,
    now: datetime,
    new_refresh_hash: str | None,
) -> Any:
    return store.job(
        refresh_hash=refresh_hash,
        presenter=presenter,
        now=now,
        access_hash=secret_hash(new_secret()),
        access_expires_at=now + timedelta(hours=1),
        access_cnf="cnf-2",
        request_id=None,
        new_refresh_hash=new_refresh_hash,
    )


def _snapshot(engine: Engine) -> tuple[list[tuple[Any, ...]], int]:
    with engine.connect() as conn:
        rows = sorted(tuple(row) for row in conn.execute(select(grants)).all())
        audited = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
    return rows, audited


def test_the_case_table_covers_every_refusal() -> None:
    assert {case.expected for case in CASES} == {None, *Refusal}
    assert len({case.id for case in CASES}) == len(CASES)


def test_python_sql_and_introspection_agree_on_every_row(
    engine: Engine, clock: FrozenClock
) -> None:
    setup_at = clock.now()
    now = clock.advance(hours=1)
    stores = {
        rotate: RefreshStore(engine, rotate=rotate, limits=LIMITS) for rotate in (False, True)
    }
    rows = [
        _set_up(engine, index, case, stores[True], now, setup_at)
        for index, case in enumerate(CASES)
    ]
    disagreements: list[str] = []
    for row in rows:
        case = row.case
        with engine.connect() as conn:
            pair = find_by_refresh_hash(conn, row.presented_hash)
            pair_client = None if pair is None else get_client(conn, pair.client_id)
            introspected = active_pair(conn, row.presented_hash, "refresh_token", now, LIMITS)
        python = (
            Refusal.UNKNOWN_TOKEN
            if pair is None
            else refreshable_by(pair, pair_client, row.presenter, now, LIMITS)
        )
        if python is not case.expected:
            disagreements.append(f"{case.id}: Python says {python}, the table {case.expected}")
        pair_refusal = None if pair is None else refreshable(pair, pair_client, now, LIMITS)
        if (pair_refusal is None and pair is not None) is not case.expected_active:
            disagreements.append(f"{case.id}: refreshable says {pair_refusal}")
        if (introspected is not None) is not case.expected_active:
            disagreements.append(f"{case.id}: introspection says active={introspected is not None}")
        before = _snapshot(engine)
        store = stores[case.rotate]
        new_refresh_hash = secret_hash(new_secret()) if case.rotate else None
        done = store.refresh(_job(store, row.presented_hash, row.presenter, now, new_refresh_hash))
        if (done is None) is not (case.expected is not None):
            disagreements.append(
                f"{case.id}: the SQL {'refused' if done is None else 'accepted'}, "
                f"the table says {case.expected}"
            )
        elif done is None and _snapshot(engine) != before:
            disagreements.append(f"{case.id}: the refused statement changed the database")
        elif done is not None and _snapshot(engine)[1] != before[1] + 1:
            disagreements.append(f"{case.id}: no audit row for the accepted refresh")
    assert not disagreements, "\n".join(disagreements)
