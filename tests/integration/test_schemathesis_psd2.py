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

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stetgate.httpsig import compute_digest, required_signed_headers, sign_request
from stetgate.psd2.consents import Consent, replace_consent
from stetgate.psd2.routes import OPENAPI_FILE
from tests.integration.psd2_support import API, ApiWorld, Signer, build_world
from tests.support.pki import TestPki

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

document = json.loads(OPENAPI_FILE.read_text())
schema = schemathesis.openapi.from_dict(document)
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


class SignedCaller:
    """Sends schemathesis cases the way a TPP would, with valid credentials, to a bank where
    the PSU consented to everything (restored before each case, as cases replace it)."""

    def __init__(self, world: ApiWorld) -> None:
        world.reset()
        self.world = world
        self.http = world.bank.client(world.tpp_certs)
        self.signer = Signer.of(world.tpp_certs)
        self.tokens = {
            "aisp": world.token("jdupont", "aisp"),
            "cbpii": world.token("jdupont", "cbpii"),
        }
        self.accounts = world.accounts_of("jdupont")
        ids = frozenset(a.resource_id for a in self.accounts)
        self.consent = Consent(ids, ids, True, True)
        self.turn = 0

    def consent_to_everything(self) -> None:
        with self.world.engine.begin() as conn:
            replace_consent(
                conn, "jdupont", self.world.tpp_certs.org_id, self.consent, self.world.clock.now()
            )

    def real_account(self) -> Any:
        """One of the PSU's accounts, in turn, so valid cases also reach existing ones."""
        self.turn += 1
        return self.accounts[self.turn % len(self.accounts)]

    def send(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        headers: dict[str, str],
        body: bytes,
        scope: str,
    ) -> httpx.Response:
        values = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("authorization", "digest", "signature", "content-length")
        }
        values["Authorization"] = f"Bearer {self.tokens[scope]}"
        if body:
            values.setdefault("Content-Type", "application/json")
            values["Digest"] = compute_digest(body)
        request = self.http.build_request(
            method, path, params=params, headers=values, content=body or None
        )
        target = request.url.raw_path.decode("ascii")
        signed = list(dict.fromkeys(["(request-target)", *required_signed_headers(values, body)]))
        if "x-request-id" not in {k.lower() for k in values}:
            signed.remove("x-request-id")  # a request without it must still reach the 400
        request.headers["Signature"] = sign_request(
            method, target, values, self.signer.key, self.signer.key_id, signed
        )
        return self.http.send(request)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def caller(world: ApiWorld) -> Iterator[SignedCaller]:
    signed = SignedCaller(world)
    yield signed
    signed.close()


def _point_at_real_accounts(case: schemathesis.Case, caller: SignedCaller) -> None:
    """Valid (positive) cases name one of the PSU's accounts: random ids would all be 404."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.path_parameters and "accountResourceId" in case.path_parameters:
        case.path_parameters["accountResourceId"] = caller.real_account().resource_id
    if case.path == "/funds-confirmations" and isinstance(case.body, dict):
        account = caller.real_account()
        case.body["accountId"] = (
            {"iban": account.iban}
            if account.iban
            else {"other": {"identification": account.other_identification, "schemeName": "CPAN"}}
        )
        amount = case.body.get("instructedAmount")
        if isinstance(amount, dict):
            amount["currency"] = "EUR"


def _body(kwargs: dict[str, Any]) -> bytes:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if data is None:
        return b""
    return data if isinstance(data, bytes) else str(data).encode()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_follows_its_openapi_document(
    case: schemathesis.Case, caller: SignedCaller
) -> None:
    caller.consent_to_everything()
    _point_at_real_accounts(case, caller)
    kwargs = case.as_transport_kwargs(base_url=API)
    scope = "cbpii" if case.path == "/funds-confirmations" else "aisp"
    path = API + case.formatted_path
    response = caller.send(
        case.method,
        path,
        dict(kwargs.get("params") or {}),
        dict(kwargs.get("headers") or {}),
        _body(kwargs),
        scope,
    )
    case.validate_response(response, checks=[*CHECKS, negative_data_rejection])
