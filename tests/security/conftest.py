"""Fixtures of the attack matrix (docs/security.md): one real TLS bank per module and database,
shared by the module's tests, with its frozen clock put back after each test.

A module may set ``BANK_SETTINGS`` (Settings overrides) for its bank. Tests that change
lasting state use their own organization, client or PSU, so sharing the bank is safe.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bank import RunningBank, start_bank
from tests.support.pki import TestPki


@pytest.fixture(scope="module")
def module_bank(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[RunningBank]:
    from tests.conftest import fresh_database_url

    data_dir = tmp_path_factory.mktemp("security-bank")
    url = fresh_database_url(request, database, data_dir)
    settings = getattr(request.module, "BANK_SETTINGS", {})
    bank = start_bank(pki, url, data_dir / "bank", **settings)
    yield bank
    bank.stop()


@pytest.fixture
def shared_bank(module_bank: RunningBank) -> Iterator[RunningBank]:
    """The module's bank; its clock is put back to where the test found it."""
    start = module_bank.clock.now()
    yield module_bank
    module_bank.clock.set(start)
