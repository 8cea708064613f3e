"""Shared fixtures: databases (SQLite and PostgreSQL), the test QTSP, and real TLS servers.

Every storage-touching test takes the ``db_url`` fixture, which is parametrized over SQLite and
PostgreSQL. PostgreSQL tests skip with a visible reason when 127.0.0.1:5432 is unreachable,
except when ``STETGATE_REQUIRE_POSTGRES=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stetgate.store.db import upgrade
from stetgate.store.schema import metadata

PG_ADMIN_URL = os.environ.get(
    "STETGATE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("STETGATE_REQUIRE_POSTGRES") == "1"


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL unreachable at {PG_ADMIN_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped at the end)."""
    problem = _pg_reachable()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"STETGATE_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    name = f"stetgate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in reversed(metadata.sorted_tables))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def fresh_database_url(request: pytest.FixtureRequest, kind: str, directory: Path) -> str:
    """A migrated, empty database of `kind`: a copy of the SQLite template in `directory`, or
    the session's PostgreSQL database truncated. Also for module-scoped fixtures."""
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = directory / "stetgate.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_all(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite and PostgreSQL."""
    return fresh_database_url(request, request.param, tmp_path)


# --- PKI and real TLS bank servers ------------------------------------------------------------
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from tests.support.bank import RunningBank, start_bank  # noqa: E402
from tests.support.pki import TestPki  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The session's test QTSP (and a foreign CA), shared by all tests."""
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def bank_factory(pki: TestPki, db_url: str, tmp_path: Path) -> Iterator[Callable[..., RunningBank]]:
    """Start banks with settings overrides: `bank_factory(sca_validity_days=30)`."""
    started: list[RunningBank] = []

    def start(**overrides: Any) -> RunningBank:
        data_dir = tmp_path / f"bank{len(started)}"
        bank = start_bank(pki, db_url, data_dir, **overrides)
        started.append(bank)
        return bank

    yield start
    for bank in started:
        bank.stop()


@pytest.fixture
def bank(bank_factory: Callable[..., RunningBank]) -> RunningBank:
    """A bank with default settings on this test's database (SQLite and PostgreSQL)."""
    return bank_factory()
