"""Storage on SQLite and PostgreSQL: repositories, migrations, and concurrent writers."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from stetgate.eidas import parse_certificate
from stetgate.oauth.clients import (
    Client,
    DuplicateClient,
    delete_client,
    get_client,
    insert_client,
    list_clients,
    set_status,
    stored_certificate,
)
from stetgate.secrets import new_id, new_secret, secret_hash
from stetgate.store.audit import record_event
from stetgate.store.audit_events import TOKEN_ISSUED
from stetgate.store.db import DatabaseNotMigrated, make_engine, require_migrated
from stetgate.store.schema import audit_events, grants, psus
from tests.support.pki import TestPki

pytestmark = pytest.mark.postgres  # repositories, migrations, concurrency

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _client(org: str, name: str, pki: TestPki | None = None) -> Client:
    certs = ()
    if pki is not None:
        tpp = pki.issue(org)
        certs = (
            stored_certificate("qwac", parse_certificate(tpp.qwac_pem.read_bytes())),
            stored_certificate("qsealc", parse_certificate(tpp.qsealc_pem.read_bytes())),
        )
    return Client(
        client_id=org,
        org_id=org,
        name=name,
        origin="golive",
        status="active",
        redirect_uris=("https://tpp.example/cb",),
        require_pkce=False,
        contacts=("ops@tpp.example",),
        grant_types=("authorization_code", "refresh_token"),
        response_types=("code",),
        certificates=certs,
        created_at=NOW,
        updated_at=NOW,
    )


def test_client_round_trips_with_its_certificates(db_url: str, pki: TestPki) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        insert_client(conn, _client("PSDFR-ACPR-12345", "Budget App", pki))
    with engine.connect() as conn:
        client = get_client(conn, "PSDFR-ACPR-12345")
    assert client is not None
    assert client.name == "Budget App"
    assert client.redirect_uris == ("https://tpp.example/cb",)
    assert [c.kind for c in client.certificates] == ["qwac", "qsealc"]
    assert client.created_at == NOW
    assert client.created_at.tzinfo is not None
    engine.dispose()


def test_duplicate_client_name_is_refused_and_changes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        insert_client(conn, _client("PSDFR-ACPR-1", "Same Name"))
    with pytest.raises(DuplicateClient), engine.begin() as conn:
        insert_client(conn, _client("PSDFR-ACPR-2", "Same Name"))
    with engine.connect() as conn:
        assert [c.client_id for c in list_clients(conn)] == ["PSDFR-ACPR-1"]
    engine.dispose()


def test_suspend_and_delete_client(db_url: str, pki: TestPki) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        insert_client(conn, _client("PSDFR-ACPR-3", "Three", pki))
        assert set_status(conn, "PSDFR-ACPR-3", "suspended", NOW)
        assert not set_status(conn, "PSDFR-ACPR-404", "suspended", NOW)
    with engine.begin() as conn:
        client = get_client(conn, "PSDFR-ACPR-3")
        assert client is not None and not client.active
        assert delete_client(conn, "PSDFR-ACPR-3")
        assert get_client(conn, "PSDFR-ACPR-3") is None
    engine.dispose()


def test_naive_datetimes_are_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as conn:
        record_event(conn, datetime(2026, 1, 1), "x")
    engine.dispose()


def test_audit_detail_never_keeps_secret_keys(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        record_event(
            conn,
            NOW,
            TOKEN_ISSUED,
            client_id="c",
            detail={"refresh_token": "s3cret", "grant": "g"},
        )
    with engine.connect() as conn:
        detail = conn.execute(select(audit_events.c.detail)).scalar_one()
    assert detail == {"grant": "g"}
    engine.dispose()


def test_unmigrated_database_is_refused(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(DatabaseNotMigrated, match="stetgate db upgrade"):
        require_migrated(engine)
    engine.dispose()


def _grant_row(i: int) -> dict[str, object]:
    return dict(
        id=new_id(),
        client_id="PSDFR-ACPR-1",
        org_id="PSDFR-ACPR-1",
        psu_id=f"psu{i}",
        role="aisp",
        scope="aisp",
        sca_at=NOW,
        created_at=NOW,
        refresh_hash=secret_hash(new_secret()),
        refresh_expires_at=NOW + timedelta(days=90),
        access_hash=secret_hash(new_secret()),
        access_scope="aisp",
        access_expires_at=NOW + timedelta(hours=1),
        access_cnf="x" * 43,
    )


def test_concurrent_writer_threads_lose_nothing(db_url: str) -> None:
    """8 threads each write 50 audit rows and 25 grants, and all increment one shared counter
    (the PSU failed-attempts pattern): no row and no increment may be lost."""
    engine = make_engine(db_url, pool_size=8)
    with engine.begin() as conn:
        conn.execute(
            insert(psus).values(
                psu_id="shared",
                display_name="Shared",
                password_hash="x",
                failed_attempts=0,
                app_sca=False,
                created_at=NOW,
            )
        )
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                with engine.begin() as conn:
                    record_event(conn, NOW, "concurrency", request_id=f"{n}-{i}")
                    if i % 2 == 0:
                        conn.execute(insert(grants).values(**_grant_row(n * 1000 + i)))
                    conn.execute(
                        update(psus)
                        .where(psus.c.psu_id == "shared")
                        .values(failed_attempts=psus.c.failed_attempts + 1)
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_events)).scalar_one() == 400
        assert conn.execute(select(func.count()).select_from(grants)).scalar_one() == 200
        assert conn.execute(select(psus.c.failed_attempts)).scalar_one() == 400
    engine.dispose()


def _process_writer(url: str, n: int) -> None:
    engine = make_engine(url, pool_size=1)
    for i in range(40):
        with engine.begin() as conn:
            record_event(conn, NOW, "multiprocess", request_id=f"p{n}-{i}")
    engine.dispose()


def test_concurrent_writer_processes_lose_nothing(db_url: str) -> None:
    """Several worker processes write at once (how `serve --workers N` uses the database)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(db_url, n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = (
            conn.execute(
                select(audit_events.c.request_id).where(audit_events.c.event == "multiprocess")
            )
            .scalars()
            .all()
        )
    assert sorted(ids) == sorted(f"p{n}-{i}" for n in range(4) for i in range(40))
    engine.dispose()
