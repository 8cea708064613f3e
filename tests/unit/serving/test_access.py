"""The access middleware: route templates (never raw paths or queries), statuses, the
authenticated caller, well-formed request ids only; one line per request."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router

from stetgate.observability.logs import ACCESS_LOGGER
from stetgate.observability.metrics import flush_requests, registry
from stetgate.serving.access import CALLER_KEY, AccessObserver, note_caller


async def _item(request: Request) -> Response:
    return PlainTextResponse("item")


async def _authenticated(request: Request) -> Response:
    note_caller(request.scope, org_id="PSDFR-ACPR-11111")
    note_caller(request.scope, client_id="client-1")
    return PlainTextResponse("ok")


async def _boom(request: Request) -> Response:
    raise RuntimeError("boom")


def _app(**options: Any) -> Starlette:
    inner = Router(routes=[Route("/accounts/{account_id}/balances", _item)])
    return Starlette(
        routes=[
            Route("/items/{item_id}", _item),
            Route("/who", _authenticated, methods=["POST"]),
            Route("/boom", _boom),
            Mount("/api/v1", app=inner),
            Mount("/static", app=PlainTextResponse("file")),
        ],
        middleware=[Middleware(AccessObserver, **options)],
    )


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if r.name == ACCESS_LOGGER]  # type: ignore[attr-defined]


class Client:
    """Requests to the app in-process (httpx's ASGI transport), one event loop each."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="https://bank.test") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(caplog: pytest.LogCaptureFixture) -> Client:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    return Client(_app())


def _count(method: str, endpoint: str, status: str) -> float:
    flush_requests()
    labels = {"method": method, "endpoint": endpoint, "status": status}
    return (
        registry().get_sample_value("stetgate_http_request_duration_seconds_count", labels) or 0.0
    )


def test_the_endpoint_is_the_route_template_never_the_path_or_query(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    before = _count("GET", "/items/{item_id}", "200")
    client.get("/items/secret-item-42?code=SECRETCODE&state=SECRETSTATE")
    (line,) = _lines(caplog)
    assert line["endpoint"] == "/items/{item_id}" and line["status"] == 200
    assert "secret-item-42" not in repr(line) and "SECRET" not in repr(line)
    assert _count("GET", "/items/{item_id}", "200") == before + 1


def test_a_mounted_router_route_has_the_mount_prefix(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/api/v1/accounts/FR7612345/balances")
    client.get("/api/v1/nowhere/FR7612345")
    client.get("/static/logo-0123.svg")
    assert [line["endpoint"] for line in _lines(caplog)] == [
        "/api/v1/accounts/{account_id}/balances",
        "/api/v1",
        "/static",
    ]


def test_an_unknown_path_is_unmatched_404(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    before = _count("GET", "unmatched", "404")
    client.get("/metrics")
    client.get("/some/path/with-a-token-in-it")
    assert [(line["endpoint"], line["status"]) for line in _lines(caplog)] == [
        ("unmatched", 404)
    ] * 2
    assert _count("GET", "unmatched", "404") == before + 2


def test_an_exception_is_logged_as_500(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    assert client.get("/boom").status_code == 500
    access = _lines(caplog)
    assert [(line["endpoint"], line["status"]) for line in access] == [("/boom", 500)]


def test_a_405_keeps_the_template_of_the_route_that_refused_it(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.get("/who").status_code == 405
    assert [(line["endpoint"], line["status"]) for line in _lines(caplog)] == [("/who", 405)]


def test_the_caller_is_whoever_the_code_authenticated(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client.post("/who", data={"client_id": "claimed-only"})
    client.get("/items/1")
    first, second = _lines(caplog)
    assert (first["client_id"], first["org_id"]) == ("client-1", "PSDFR-ACPR-11111")
    assert (second["client_id"], second["org_id"]) == (None, None)


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("0f0e1a2b-1234-4cde-8f00-aabbccddeeff", "0f0e1a2b-1234-4cde-8f00-aabbccddeeff"),
        ("has space", None),
        ("x" * 101, None),
        ("caf\u00e9", None),
    ],
)
def test_only_a_well_formed_request_id_is_logged(
    client: Client, caplog: pytest.LogCaptureFixture, sent: str, logged: str | None
) -> None:
    client.get("/items/1", headers={"X-Request-ID": sent.encode("utf-8")})  # type: ignore[dict-item]
    (line,) = _lines(caplog)
    assert line["request_id"] == logged


def test_each_line_has_exactly_the_documented_fields(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/items/1", headers={"Authorization": "Bearer SECRET", "Cookie": "s=SECRET"})
    (line,) = _lines(caplog)
    assert set(line) == {
        "event",
        "request_id",
        "method",
        "endpoint",
        "status",
        "duration_ms",
        "client_id",
        "org_id",
    }
    assert line["duration_ms"] >= 0 and "SECRET" not in repr(line)


def test_with_the_access_log_off_requests_are_still_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    before = _count("GET", "/items/{item_id}", "200")
    Client(_app(log_requests=False)).get("/items/7")
    assert _lines(caplog) == []
    assert _count("GET", "/items/{item_id}", "200") == before + 1


def test_note_caller_keeps_what_an_earlier_step_noted() -> None:
    scope: dict[str, Any] = {}
    note_caller(scope, org_id="ORG")
    note_caller(scope, client_id="CID")
    assert scope[CALLER_KEY] == ("CID", "ORG")
