"""`purge_expired`: expired short-lived rows go, live ones and the audit trail stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from stetgate.secrets import new_id, new_secret, secret_hash
from stetgate.store.audit import record_event
from stetgate.store.audit_events import TOKEN_ISSUED
from stetgate.store.db import make_engine
from stetgate.store.retention import purge_expired
from stetgate.store.schema import (
    audit_events,
    authorization_codes,
    grants,
    oidc_logins,
    psd2_unattended_access,
    psu_journeys,
    service_tokens,
    statistics_availability,
    statistics_latency,
    statistics_requests,
)

pytestmark = pytest.mark.postgres  # purge statements

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _journey(last_activity: datetime) -> dict[str, object]:
    return dict(
        id_hash=secret_hash(new_secret()),
        client_id="c",
        redirect_uri="https://t/cb",
        scope="aisp",
        lang="fr",
        stage="identify",
        csrf_token="x" * 43,
        started_at=last_activity,
        last_activity_at=last_activity,
    )


def _code(expires: datetime) -> dict[str, object]:
    return dict(
        code_hash=secret_hash(new_secret()),
        client_id="c",
        org_id="o",
        psu_id="p",
        redirect_uri="https://t/cb",
        scope="aisp",
        sca_at=expires,
        expires_at=expires,
    )


def _grant(revoked: datetime | None, refresh_expires: datetime) -> dict[str, object]:
    return dict(
        id=new_id(),
        client_id="c",
        org_id="o",
        psu_id="p",
        role="aisp",
        scope="aisp",
        sca_at=NOW,
        created_at=NOW,
        refresh_hash=secret_hash(new_secret()),
        refresh_expires_at=refresh_expires,
        access_hash=secret_hash(new_secret()),
        access_scope="aisp",
        access_expires_at=NOW,
        access_cnf="x" * 43,
        revoked_at=revoked,
    )


def _count(conn: object, table: object) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[attr-defined]


def test_purge_removes_only_what_has_expired(db_url: str) -> None:
    engine = make_engine(db_url)
    old, recent = NOW - timedelta(days=3), NOW - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(insert(psu_journeys), [_journey(old), _journey(recent)])
        conn.execute(insert(authorization_codes), [_code(old), _code(NOW + timedelta(seconds=30))])
        conn.execute(
            insert(service_tokens),
            [
                dict(
                    access_hash=secret_hash(new_secret()),
                    client_id="r",
                    org_id="o",
                    scope="m",
                    cnf="x",
                    expires_at=when,
                    created_at=when,
                )
                for when in (old, NOW)
            ],
        )
        conn.execute(
            insert(psd2_unattended_access),
            [
                dict(
                    org_id="o",
                    psu_id="p",
                    endpoint="accounts",
                    resource=r,
                    window_key="k",
                    count=1,
                    hits="",
                    expires_at=when,
                )
                for r, when in (("a", old), ("b", NOW + timedelta(hours=5)))
            ],
        )
        conn.execute(
            insert(grants),
            [
                _grant(NOW - timedelta(days=500), NOW + timedelta(days=1)),  # revoked long ago
                _grant(None, NOW - timedelta(days=450)),  # refresh expired long ago
                _grant(NOW - timedelta(days=10), NOW + timedelta(days=80)),  # revoked recently
                _grant(None, NOW + timedelta(days=80)),  # live
            ],
        )
        record_event(conn, NOW - timedelta(days=3000), TOKEN_ISSUED)
        for state, created in (("old", old), ("recent", recent)):
            login = {"state_hash": state, "journey_id_hash": "j", "nonce_hash": "n"}
            conn.execute(insert(oidc_logins).values(**login, code_verifier="v", created_at=created))
    with engine.begin() as conn:
        report = purge_expired(conn, NOW, grant_retention_days=400)
    assert report.oidc_logins == 1
    assert (
        report.journeys,
        report.codes,
        report.registration_tokens,
        report.unattended_counters,
        report.token_pairs,
    ) == (1, 1, 1, 1, 2)
    with engine.connect() as conn:
        assert [
            _count(conn, t)
            for t in (
                psu_journeys,
                authorization_codes,
                service_tokens,
                psd2_unattended_access,
                grants,
                audit_events,
            )
        ] == [1, 1, 1, 1, 2, 1]
    engine.dispose()


def test_purge_on_an_empty_database_deletes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        report = purge_expired(conn, NOW)
    assert set(vars(report).values()) == {0}
    engine.dispose()


def test_statistics_minutes_are_kept_their_retention_days_then_purged(db_url: str) -> None:
    engine = make_engine(db_url)
    edge = NOW - timedelta(days=800)
    minutes = [edge - timedelta(minutes=1), edge, NOW - timedelta(days=1)]
    with engine.begin() as conn:
        for minute in minutes:
            conn.execute(
                insert(statistics_requests).values(
                    minute=minute, family="aisp", status_class=2, requests=3, latency_us=9
                )
            )
            conn.execute(
                insert(statistics_latency).values(
                    minute=minute, family="aisp", bucket=4, requests=3
                )
            )
            conn.execute(
                insert(statistics_availability).values(
                    minute=minute, probes_up=6, probes_down=0, failure_runs=0
                )
            )
    with engine.begin() as conn:
        report = purge_expired(conn, NOW, statistics_retention_days=800)
        assert report.statistics_minutes == 3  # one minute in each of the three tables
        assert report.token_pairs == report.journeys == 0
        for table in (statistics_requests, statistics_latency, statistics_availability):
            kept = sorted(conn.execute(select(table.c.minute)).scalars())
            assert kept == minutes[1:], table.name
    with engine.begin() as conn:  # a shorter retention setting deletes more
        assert purge_expired(conn, NOW, statistics_retention_days=100).statistics_minutes == 3
    engine.dispose()
