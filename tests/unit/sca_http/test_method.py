"""`HttpAppMethod` against scripted answers (httpx.MockTransport): what it sends matches the
OpenAPI contract, and every unusable answer is `ScaServiceUnavailable`, never a half-started
challenge."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import create_engine

import stetgate.sca_http
from stetgate.bank.sca import ChallengeContext, ScaServiceUnavailable
from stetgate.clock import FrozenClock
from stetgate.sca_http.method import HttpAppMethod
from stetgate.sca_http.signing import SIGNATURE_HEADER, verify
from stetgate.settings import Settings

SECRET = "m" * 40
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SPEC = json.loads((Path(stetgate.sca_http.__file__).parent / "openapi.json").read_text())
CONTEXT = ChallengeContext(
    psu_id="alice",
    reference="ABCDEFGHJK",
    client_name="Budget Facile",
    access="cbpii",
    expires_at=NOW + timedelta(minutes=5),
    request_id="req-1",
)


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}


def _method(
    tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response], mode: str = "callback"
) -> HttpAppMethod:
    settings = Settings(
        data_dir=tmp_path,
        sca_http_url="http://sca.test/base",
        sca_http_secret=SECRET,
        sca_http_mode=mode,  # type: ignore[arg-type]
        issuer="https://bank.test",
    )
    engine = create_engine("sqlite://")
    return HttpAppMethod(engine, settings, FrozenClock(NOW), transport=httpx.MockTransport(handler))


def test_the_spec_is_openapi_3_1_with_the_contract_paths() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    assert set(SPEC["paths"]) == {"/challenges", "/challenges/{challenge_id}"}
    for schema in SPEC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("mode", ["callback", "poll"])
def test_start_sends_a_signed_request_the_spec_describes(tmp_path: Path, mode: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"challenge_id": "svc-1", "status": "pending"})

    columns = _method(tmp_path, handler, mode).start(CONTEXT)
    assert columns == {
        "app_challenge_id": "ABCDEFGHJK",
        "app_challenge_status": "pending",
        "sca_service_challenge_id": "svc-1",
    }
    (request,) = seen
    assert request.url == "http://sca.test/base/challenges"
    assert request.headers["x-request-id"] == "req-1"
    assert request.headers["sca-contract-version"] == "1"
    body = json.loads(request.content)
    jsonschema.validate(body, _schema("ChallengeRequest"))
    assert body["reference"] == "ABCDE-FGHJK" and body["access"] == "cbpii"
    expected_callback = "https://bank.test/psu/sca/callback" if mode == "callback" else None
    assert body["callback_url"] == expected_callback
    verify(
        SECRET,
        request.headers[SIGNATURE_HEADER],
        "POST",
        "/challenges",
        request.content,
        now=NOW,
        max_skew_seconds=1,
    )


def _raises(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def _answers(status: int, body: Any = None, raw: bytes | None = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if raw is not None:
            return httpx.Response(status, content=raw)
        return httpx.Response(status, json=body)

    return handler


@pytest.mark.parametrize(
    "handler",
    [
        _raises(httpx.ConnectError("refused")),
        _raises(httpx.ReadTimeout("slow")),
        _answers(500, {"error": "boom"}),
        _answers(200, {"challenge_id": "svc-1"}),  # not 201
        _answers(302, {"challenge_id": "svc-1"}),
        _answers(201, raw=b"<html>"),
        _answers(201, ["svc-1"]),
        _answers(201, {}),
        _answers(201, {"challenge_id": ""}),
        _answers(201, {"challenge_id": "../admin"}),
        _answers(201, {"challenge_id": "x" * 129}),
        _answers(201, {"challenge_id": 42}),
    ],
)
def test_an_unusable_service_answer_at_start_is_unavailable(
    tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response]
) -> None:
    with pytest.raises(ScaServiceUnavailable):
        _method(tmp_path, handler).start(CONTEXT)


class _Attempt:
    psu_id = "alice"
    app_challenge_status = "pending"
    app_challenge_id = "ABCDEFGHJK"
    sca_service_challenge_id = "svc-1"


@pytest.mark.parametrize(
    "handler",
    [
        _raises(httpx.ReadTimeout("slow")),
        _answers(404, {"error": "unknown_challenge"}),
        _answers(200, {"challenge_id": "svc-1", "status": "maybe"}),
        _answers(200, {"challenge_id": "svc-2", "status": "approved"}),  # another challenge
        _answers(200, {"status": "approved"}),
    ],
)
def test_an_unusable_poll_answer_is_unavailable(
    tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response]
) -> None:
    with pytest.raises(ScaServiceUnavailable):
        _method(tmp_path, handler, "poll").refresh(_Attempt(), NOW)


def test_callback_mode_never_polls(tmp_path: Path) -> None:
    method = _method(tmp_path, _raises(AssertionError("no call expected")), "callback")
    assert method.refresh(_Attempt(), NOW) is None


def test_begin_without_context_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaServiceUnavailable):
        _method(tmp_path, _answers(201, {"challenge_id": "svc-1"})).begin()
