"""Writing a `StatisticsReport`: two CSV files (daily, quarterly) and one HTML page.

CSV: one row per period and family (``authorization``, ``token``, ``aisp``, ``cbpii`` and
``all``); the availability columns belong to the interface as a whole and are filled on the
``all`` row only. An empty cell means "no request" (or "not elapsed yet"), never zero.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from stetgate.statistics.charts import Series, bar_chart
from stetgate.statistics.families import FAMILIES
from stetgate.statistics.report import (
    ALL,
    PERCENTILES,
    FamilyFigures,
    PeriodStatistics,
    StatisticsReport,
)

CSV_COLUMNS = (
    "period",
    "first_day",
    "last_day",
    "family",
    "requests",
    "responses_4xx",
    "responses_5xx",
    "error_rate_4xx_percent",
    "error_rate_5xx_percent",
    "mean_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "elapsed_minutes",
    "downtime_minutes",
    "downtime_percent",
    "uptime_percent",
)
DAILY_CSV = "statistics-daily.csv"
QUARTERLY_CSV = "statistics-quarterly.csv"
HTML_FILE = "statistics.html"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def figure_cells(figures: FamilyFigures) -> dict[str, str]:
    cells = {
        "requests": str(figures.requests),
        "responses_4xx": str(figures.responses_4xx),
        "responses_5xx": str(figures.responses_5xx),
        "error_rate_4xx_percent": _number(figures.rate_percent(figures.responses_4xx), 4),
        "error_rate_5xx_percent": _number(figures.rate_percent(figures.responses_5xx), 4),
        "mean_ms": _number(figures.mean_ms, 3),
    }
    for q in PERCENTILES:
        cells[f"p{round(q * 100)}_ms"] = _number(figures.percentile_ms(q), 3)
    return cells


def period_rows(period: PeriodStatistics) -> list[dict[str, str]]:
    rows = []
    for family in (*FAMILIES, ALL):
        row = {
            "period": period.label,
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(),
            "family": family,
            **figure_cells(period.families[family]),
            "elapsed_minutes": "",
            "downtime_minutes": "",
            "downtime_percent": "",
            "uptime_percent": "",
        }
        if family == ALL:
            availability = period.availability
            row.update(
                elapsed_minutes=str(availability.elapsed_minutes),
                downtime_minutes=str(availability.down_minutes),
                downtime_percent=_number(availability.downtime_percent, 4),
                uptime_percent=_number(availability.uptime_percent, 4),
            )
        rows.append(row)
    return rows


def write_csv(path: Path, periods: Sequence[PeriodStatistics]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for period in periods:
            writer.writerows(period_rows(period))


@dataclass(frozen=True)
class Chart:
    heading: str
    svg: Markup


def charts(report: StatisticsReport) -> list[Chart]:
    labels = [p.label for p in report.daily]

    def per_family(value: str) -> list[Series]:
        return [
            Series(family, [_figure(p.families[family], value) for p in report.daily])
            for family in FAMILIES
        ]

    return [
        Chart(
            "Uptime per day",
            bar_chart(
                "chart-uptime",
                "Uptime of the dedicated interface per day (%)",
                "Percentage of the elapsed minutes of each UTC day during which the interface "
                "was up (EBA/GL/2018/07 GL 2.2).",
                labels,
                [Series("uptime", [p.availability.uptime_percent for p in report.daily])],
                "%",
                top=100.0,
            ),
        ),
        Chart(
            "Requests per day",
            bar_chart(
                "chart-requests",
                "Requests per day and endpoint family",
                "Number of requests answered each day, one bar per endpoint family.",
                labels,
                per_family("requests"),
                "requests",
            ),
        ),
        Chart(
            "95th percentile response time per day",
            bar_chart(
                "chart-p95",
                "95th percentile response time per day and endpoint family (ms)",
                "Time to answer 95 % of the requests of each family, per day "
                "(EBA/GL/2018/07 GL 2.3).",
                labels,
                per_family("p95"),
                "ms",
            ),
        ),
        Chart(
            "Server errors per day",
            bar_chart(
                "chart-errors",
                "Share of requests answered with a server error (5xx) per day (%)",
                "Percentage of each family's requests answered with a 5xx status, per day.",
                labels,
                per_family("5xx"),
                "%",
            ),
        ),
    ]


def _figure(figures: FamilyFigures, value: str) -> float | None:
    if value == "requests":
        return float(figures.requests)
    if value == "p95":
        return figures.percentile_ms(0.95)
    return figures.rate_percent(figures.responses_5xx)


def render_html(report: StatisticsReport) -> str:
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    template = environment.get_template("statistics.html")
    return template.render(
        report=report,
        charts=charts(report),
        families=(*FAMILIES, ALL),
        rows_of=period_rows,
    )


def write_report(report: StatisticsReport, directory: Path) -> list[Path]:
    """Write the two CSV files and the HTML page into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    daily, quarterly, html = (
        directory / DAILY_CSV,
        directory / QUARTERLY_CSV,
        directory / HTML_FILE,
    )
    write_csv(daily, report.daily)
    write_csv(quarterly, report.quarterly)
    html.write_text(render_html(report), encoding="utf-8")
    return [daily, quarterly, html]
