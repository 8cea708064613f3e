"""Fixtures of the attack matrix (docs/security.md): one real TLS bank per module and database,
shared by the module's tests, with its frozen clock put back after each test; and, for the
modules that call the STET API, one seeded bank (`build_world`) reset before each test.

A module may set ``BANK_SETTINGS`` (Settings overrides) for its bank. Tests that change
lasting state use their own organization, client or PSU, so sharing the bank is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.psd2_support import ApiWorld, build_world
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.unit.registry.register_client import module_bank

__all__ = ["api", "module_bank", "shared_bank", "world"]


@pytest.fixture
def shared_bank(module_bank: RunningBank) -> Iterator[RunningBank]:
    """The module's bank; its clock is put back to where the test found it."""
    start = module_bank.clock.now()
    yield module_bank
    module_bank.clock.set(start)


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    directory: Path = tmp_path_factory.mktemp("stet-world")
    yield from build_world(request, pki, directory, database)


@pytest.fixture
def api(world: ApiWorld) -> ApiWorld:
    world.reset()
    return world
