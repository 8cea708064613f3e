"""The short fuzz run CI does (scripts/fuzz.py does 10,000 requests and more): a few hundred
generated requests over every endpoint family of a real bank — schemathesis on the signed STET
API, hypothesis forms on /token, /revoke, /introspect, /authorize, the PSU pages and the
register API — and not one 5xx or contract violation (`tests.support.fuzzing`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.psd2_support import ApiWorld, build_world
from tests.support.fuzzing import FuzzReport, fuzz_world
from tests.support.pki import TestPki

REQUESTS = 400
FAMILIES = (
    "stet ",
    "oauth token",
    "oauth revoke",
    "oauth introspect",
    "psu authorize",
    "psu POST",
    "register ",
)


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    yield from build_world(request, pki, tmp_path_factory.mktemp("fuzz"), database)


@pytest.fixture(scope="module")
def report(world: ApiWorld) -> FuzzReport:
    return fuzz_world(world, REQUESTS, seed_value=0)


def test_a_short_fuzz_run_finds_no_server_error_and_no_contract_violation(
    report: FuzzReport,
) -> None:
    summary = "\n".join(report.lines())
    assert report.total >= REQUESTS, summary
    assert not report.server_errors, summary
    assert not report.violations, summary


def test_the_short_fuzz_run_reaches_every_endpoint_family(report: FuzzReport) -> None:
    reached = {
        family: sum(n for t, n in report.requests.items() if t.startswith(family))
        for family in FAMILIES
    }
    assert all(reached.values()), reached
    assert (
        report.statuses[200] > 0
        and sum(n for s, n in report.statuses.items() if 400 <= s < 500) > 0
    )
