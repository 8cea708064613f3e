"""Schemathesis against the served OpenAPI document of the resource API, over mutual TLS with
real tokens and every generated request signed with the TPP's QSealC: no 5xx, and every
response conforms to the document (status codes, media types, headers, body schemas).

Generated data is kept as schemathesis made it (headers, query, path, body); only the
credentials are set: ``Authorization`` (an AISP or CBPII token bound to the QWAC, by
operation), ``Digest`` (of the body actually sent) and ``Signature`` (over the required
headers). Bounded: ``MAX_EXAMPLES`` per operation and mode, so the run stays well under a
minute on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.integration.psd2_support import ApiWorld, build_world
from tests.support.fuzzing import STET_CHECKS, SignedCaller, stet_schema
from tests.support.pki import TestPki

MAX_EXAMPLES = 25
schema = stet_schema()
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, modes=["positive", "negative"], deterministic=True
)


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    yield from build_world(request, pki, tmp_path_factory.mktemp("schemathesis"), database)


@pytest.fixture(scope="module")
def caller(world: ApiWorld) -> Iterator[SignedCaller]:
    signed = SignedCaller(world)
    yield signed
    signed.close()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_follows_its_openapi_document(
    case: schemathesis.Case, caller: SignedCaller
) -> None:
    response = caller.send_case(case)
    case.validate_response(response, checks=[*STET_CHECKS, negative_data_rejection])
