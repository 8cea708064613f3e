"""The hot-path read engine and pre-compiled reads behave like SQLAlchemy's own execution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, exc, func, insert, select, text

from stetgate.store.db import make_engine
from stetgate.store.reading import CompiledRead, read_only_engine
from stetgate.store.schema import bank_accounts, bank_balances, psd2_consents

pytestmark = pytest.mark.postgres  # compiled reads on the raw DBAPI cursor

NOW = datetime(2026, 11, 26, 12, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    engine = make_engine(db_url, 1)
    reads = read_only_engine(engine, 1)
    with engine.begin() as conn:
        conn.execute(
            insert(psd2_consents),
            [
                dict(
                    psu_id="p1",
                    org_id="O1",
                    balances=["A1", "A2"],
                    transactions=[],
                    trusted_beneficiaries=True,
                    psu_identity=False,
                    created_at=NOW,
                    updated_at=NOW + timedelta(hours=1),
                ),
                dict(
                    psu_id="p2",
                    org_id="O1",
                    balances=[],
                    transactions=["B"],
                    trusted_beneficiaries=False,
                    psu_identity=True,
                    created_at=NOW,
                    updated_at=NOW,
                ),
            ],
        )
        conn.execute(
            insert(bank_accounts).values(
                resource_id="A1",
                bic="STGTFRPPXXX",
                iban=None,
                currency="EUR",
                name="n",
                usage="PRIV",
                cash_account_type="CACC",
                product="p",
                overdraft_minor=0,
            )
        )
        conn.execute(
            insert(bank_balances).values(
                account_id="A1",
                balance_type="CLBD",
                position=0,
                name="b",
                amount_minor=-15,
                reference_date=date(2026, 11, 26),
                last_change_at=NOW,
                last_committed_entry=None,
            )
        )
    yield engine, reads
    reads.dispose()
    engine.dispose()


def test_compiled_reads_return_what_sqlalchemy_returns(engines: tuple[Engine, Engine]) -> None:
    engine, reads = engines
    statement = (
        select(psd2_consents)
        .where(psd2_consents.c.updated_at > bindparam("after"), psd2_consents.c.org_id == "O1")
        .order_by(psd2_consents.c.psu_id)
    )
    compiled = CompiledRead(reads, statement)
    for after in (NOW - timedelta(seconds=1), NOW, NOW + timedelta(hours=2)):
        with engine.connect() as conn:
            expected = [tuple(r) for r in conn.execute(statement, {"after": after})]
        assert [tuple(r) for r in compiled.rows({"after": after})] == expected
    rows = compiled.rows({"after": NOW - timedelta(days=1)})
    assert rows[0].balances == ["A1", "A2"] and rows[0].updated_at.tzinfo is not None
    balance = CompiledRead(
        reads, select(bank_balances).where(bank_balances.c.account_id == bindparam("id"))
    ).rows({"id": "A1"})[0]
    assert (balance.reference_date, balance.last_change_at, balance.amount_minor) == (
        date(2026, 11, 26),
        NOW,
        -15,
    )


def test_the_read_engine_cannot_write(engines: tuple[Engine, Engine]) -> None:
    _, reads = engines
    with pytest.raises(exc.DBAPIError, match=r"readonly|read-only"), reads.begin() as conn:
        conn.execute(text("DELETE FROM psd2_consents"))
    assert len(CompiledRead(reads, select(psd2_consents.c.psu_id)).rows({})) == 2


def test_disposing_of_the_engine_disposes_of_the_read_engine(
    engines: tuple[Engine, Engine],
) -> None:
    engine, reads = engines
    CompiledRead(reads, select(psd2_consents.c.psu_id)).rows({})
    assert reads.pool.checkedin() == 1
    engine.dispose()
    assert reads.pool.checkedin() == 0


def test_a_dropped_connection_is_replaced_and_the_read_retried(pg_database: str) -> None:
    """PostgreSQL only: SQLite connections are files and never drop."""
    engine = make_engine(pg_database, 1)
    reads = read_only_engine(engine, 1)
    try:
        read = CompiledRead(reads, select(func.pg_backend_pid()))
        pid = read.rows({})[0][0]
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert read.rows({})[0][0] != pid
    finally:
        engine.dispose()
