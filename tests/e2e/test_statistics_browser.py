"""The HTML statistics report in Chromium: the charts render (SVG with a size, bars, an
accessible title) and the page has no console error. The report is written by the CLI from a
database the recorder filled (three days across a quarter boundary, with failures)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from stetgate.app import endpoint_families
from stetgate.clock import FrozenClock
from stetgate.serving.blocking import BlockingCalls
from stetgate.statistics.recorder import StatisticsRecorder
from tests.integration.test_statistics_report import invoke_report
from tests.support.browser import launched_chromium, require_chromium

require_chromium()

from playwright.sync_api import Browser, Page  # noqa: E402

START = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # 30 March … 1 April: Q1 and Q2


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def report(db_url: str, tmp_path: Path) -> Path:
    engine = create_engine(db_url)
    clock = FrozenClock(START)
    recorder = StatisticsRecorder(
        engine,
        clock,
        BlockingCalls(1),
        endpoint_families(),
        flush_seconds=10,
        probe_seconds=10,
    )
    for day in range(3):
        clock.set(START + timedelta(days=day))
        for minute in range(30):
            recorder.record_probe(up=minute != 7)
            recorder.record("aisp", 200, 0.01 * (1 + day + minute % 5))
            recorder.record("token", 200 if minute % 3 else 400, 0.002)
            recorder.record("cbpii", 503 if day == 1 and minute < 6 else 200, 0.04)
            recorder.record("authorization", 302, 0.12)
            clock.advance(60)
    recorder.flush_now()
    engine.dispose()
    out = tmp_path / "report"
    result = invoke_report(tmp_path, "2026-03-30", "2026-04-01", out, db_url)
    assert result.exit_code == 0, result.output
    return out / "statistics.html"


def open_page(chromium: Browser, html: Path) -> tuple[Page, list[str]]:
    page = chromium.new_page()
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: problems.append(f"fetched {request.url}"))
    page.goto(html.as_uri())
    problems.remove(f"fetched {html.as_uri()}")  # the page itself: nothing else is fetched
    return page, problems


def test_every_chart_renders_with_a_size_bars_and_an_accessible_name(
    chromium: Browser, report: Path
) -> None:
    page, problems = open_page(chromium, report)
    charts = page.locator("svg.chart")
    assert charts.count() == 4
    for index in range(4):
        chart = charts.nth(index)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, box
        assert chart.get_attribute("role") == "img"
        title_id = (chart.get_attribute("aria-labelledby") or "").split()[0]
        assert page.locator(f"#{title_id}").text_content()
        bars = chart.locator("rect.bar")
        assert bars.count() >= 3
        first = bars.first.bounding_box()
        assert first is not None and first["width"] > 0 and first["height"] > 0
    uptime_bars = page.locator("#chart-uptime rect.bar")
    assert uptime_bars.count() == 3  # one per day
    requests_bars = page.locator("#chart-requests rect.bar")
    assert requests_bars.count() == 3 * 4  # days × families
    assert problems == []
    page.close()


def test_tables_have_captions_and_the_figures_of_the_csv(chromium: Browser, report: Path) -> None:
    page, problems = open_page(chromium, report)
    captions = page.locator("table caption").all_text_contents()
    assert [c.split(" ")[0] for c in captions] == [
        "2026-Q1",
        "2026-Q2",
        "2026-03-30",
        "2026-03-31",
        "2026-04-01",
    ]
    q2 = page.locator("table").nth(1)
    cbpii = q2.locator("tr", has=page.locator("th", has_text="cbpii"))
    assert cbpii.locator("td").nth(0).text_content() == "30"  # requests on 1 April
    assert page.locator("h1").text_content()
    assert problems == []
    page.close()
