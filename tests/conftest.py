"""Shared fixtures: databases (SQLite and PostgreSQL), the test QTSP, and real TLS servers.

Which databases a test runs on. Every storage-touching test takes ``db_url`` (or a fixture built
on it: ``bank``, ``bank_factory``, an ``engine``), and module-scoped worlds take ``database``.
Both are parametrized by `pytest_generate_tests` below:

- on **SQLite only** by default: most tests check rules that never reach dialect-specific SQL,
  and re-running them on PostgreSQL behind a TLS server only costs time;
- on **SQLite and PostgreSQL** when the test, its class or its module is marked
  ``@pytest.mark.postgres``: the stores and statements whose SQL differs by dialect (token pairs
  and the refresh statement, code claims, unattended counters, retention, compiled reads,
  registrations, the PSU directory, journeys' compare-and-set updates, concurrency) and one
  smoke test per HTTP endpoint. Put the mark on the test or write ``pytestmark =
  pytest.mark.postgres`` in the module, with the reason.

Test ids keep the database first (``test_x[sqlite]``, ``test_x[postgresql-…]``): ``.ci/run``
counts the ``[postgresql`` cases in the JUnit report. PostgreSQL tests skip with a visible reason
when 127.0.0.1:5432 is unreachable, except when ``STETGATE_REQUIRE_POSTGRES=1`` (CI), where that
is a failure.

``STETGATE_TEST_DATABASES=sqlite`` deselects every PostgreSQL-parametrized case and makes any
other use of PostgreSQL skip with its reason: the date-shifted CI pass runs under libfaketime,
which moves this process's clock but not the PostgreSQL server's.
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
DATABASES = frozenset(
    os.environ.get("STETGATE_TEST_DATABASES", "sqlite,postgresql").replace(" ", "").split(",")
)
if not {"sqlite", "postgresql"} >= DATABASES or "sqlite" not in DATABASES:
    raise pytest.UsageError(
        f"STETGATE_TEST_DATABASES={os.environ['STETGATE_TEST_DATABASES']!r}: "
        "use 'sqlite' or 'sqlite,postgresql'"
    )
PG_EXCLUDED = (
    "PostgreSQL excluded by STETGATE_TEST_DATABASES=sqlite (date-shifted pass: the database "
    "server's clock is not shifted)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without PostgreSQL in ``STETGATE_TEST_DATABASES``, deselect its parametrized cases."""
    if "postgresql" in DATABASES:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        (dropped if any(p == "postgresql" for p in params) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
    if "postgresql" not in DATABASES:
        pytest.skip(PG_EXCLUDED)
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


@pytest.hookimpl(tryfirst=True)  # first, so the database leads the test id
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``database``: SQLite, plus PostgreSQL for tests marked ``postgres``."""
    if "database" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("postgres") is not None
        kinds = ["sqlite", "postgresql"] if marked else ["sqlite"]
        metafunc.parametrize("database", kinds, indirect=True)


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"`` (see the module docstring); module-scoped so that
    module-scoped worlds can take it."""
    kind: str = request.param
    return kind


@pytest.fixture
def db_url(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> str:
    """A migrated, empty database of this test's ``database``."""
    return fresh_database_url(request, database, tmp_path)


# --- PKI and real TLS bank servers ------------------------------------------------------------
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from tests.support.bank import RunningBank, start_bank  # noqa: E402
from tests.support.pki import TestPki  # noqa: E402
from tests.support.psu_flow import PsuBrowser  # noqa: E402


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
    """A bank with default settings on this test's database (``db_url``)."""
    return bank_factory()


@pytest.fixture
def browser(bank: RunningBank) -> Iterator[PsuBrowser]:
    """A PSU's script-less browser on this test's ``bank`` (`tests.support.psu_flow`)."""
    with PsuBrowser(bank) as b:
        yield b
