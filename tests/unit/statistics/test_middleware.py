"""`RequestStatistics`: what it counts for each answer, and what it leaves alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import create_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from stetgate.app import endpoint_families
from stetgate.clock import FrozenClock
from stetgate.serving.blocking import BlockingCalls
from stetgate.statistics.recorder import RequestStatistics, StatisticsRecorder

API = "/stet/psd2/v1.4.2"
MINUTE = int(datetime(2026, 6, 30, 23, 59, tzinfo=UTC).timestamp()) // 60


async def answer(request: Request) -> PlainTextResponse:
    status = int(request.query_params.get("status", "200"))
    if status == 0:
        raise RuntimeError("handler bug")
    return PlainTextResponse("x", status_code=status)


@pytest.fixture
def recorder() -> StatisticsRecorder:
    return StatisticsRecorder(
        create_engine("sqlite://"),
        FrozenClock(datetime(2026, 6, 30, 23, 59, 30, tzinfo=UTC)),
        BlockingCalls(1),
        endpoint_families(),
        flush_seconds=300,
        probe_seconds=60,
    )


def send(recorder: StatisticsRecorder, *requests: tuple[str, str]) -> list[int]:
    """The statuses of ``(method, path)`` requests sent through the middleware."""
    app = Starlette(
        routes=[Route("/{path:path}", answer, methods=["GET", "POST"])],
        middleware=[Middleware(RequestStatistics, recorder=recorder)],
    )

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as http:
            return [(await http.request(method, path)).status_code for method, path in requests]

    return asyncio.run(run())


def test_each_answer_is_counted_by_family_and_status_class(recorder: StatisticsRecorder) -> None:
    assert send(
        recorder,
        ("GET", f"{API}/accounts"),
        ("GET", f"{API}/accounts/a/balances?status=404"),
        ("POST", f"{API}/funds-confirmations?status=503"),
        ("POST", "/stet/psd2/oauth/token?status=400"),
    ) == [200, 404, 503, 400]
    counts = recorder._counts.requests
    assert {key: value[0] for key, value in counts.items()} == {
        (MINUTE, "aisp", 2): 1,
        (MINUTE, "aisp", 4): 1,
        (MINUTE, "cbpii", 5): 1,
        (MINUTE, "token", 4): 1,
    }
    assert all(value[1] >= 0 for value in counts.values())
    assert sum(recorder._counts.latency.values()) == 4


def test_an_exception_escaping_the_app_counts_as_a_server_error(
    recorder: StatisticsRecorder,
) -> None:
    assert send(recorder, ("GET", f"{API}/accounts?status=0")) == [500]
    assert list(recorder._counts.requests) == [(MINUTE, "aisp", 5)]
    assert recorder._counts.availability.get(MINUTE, [0, 0, 0])[2] == 0  # one is not a run


@pytest.mark.parametrize(
    "path",
    ["/health/live", "/psu/static/psu.css", f"{API}/openapi.json", "/stet/setting/v1/register"],
)
def test_paths_outside_the_families_are_not_counted(
    recorder: StatisticsRecorder, path: str
) -> None:
    assert send(recorder, ("GET", path)) == [200]
    assert recorder._counts.requests == {} and recorder._counts.latency == {}


def test_five_server_errors_in_a_row_mark_the_minute_down(recorder: StatisticsRecorder) -> None:
    assert send(recorder, *[("GET", f"{API}/accounts?status=503")] * 4) == [503] * 4
    assert recorder._counts.availability.get(MINUTE, [0, 0, 0])[2] == 0
    assert send(recorder, ("GET", f"{API}/accounts?status=503")) == [503]
    assert recorder._counts.availability[MINUTE][2] == 1
