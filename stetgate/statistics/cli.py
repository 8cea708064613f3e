"""``stetgate report statistics``: the quarterly PSD2 statistics from the recorded minutes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import Engine

from stetgate.cli_context import settings_of
from stetgate.clock import SystemClock
from stetgate.statistics.output import write_report
from stetgate.statistics.periods import day_start
from stetgate.statistics.report import build_report
from stetgate.statistics.store import availability_samples, latency_rows, request_rows
from stetgate.store.db import DatabaseNotMigrated, make_engine, read_connection, require_migrated

DAY = click.DateTime(formats=["%Y-%m-%d"])


@click.group()
def report() -> None:
    """Reports built from what the server recorded."""


@report.command("statistics")
@click.option("--from", "first", type=DAY, required=True, help="First UTC day (YYYY-MM-DD).")
@click.option("--to", "last", type=DAY, required=True, help="Last UTC day, included.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("statistics"),
    show_default=True,
    help="Folder for statistics-daily.csv, statistics-quarterly.csv and statistics.html.",
)
@click.pass_context
def statistics(ctx: click.Context, first: datetime, last: datetime, out: Path) -> None:
    """Uptime, downtime, requests, error rates and response times of the dedicated interface
    per day and per quarter (RTS 2018/389 Art. 32(4), EBA/GL/2018/07 guidelines 2.2–2.4),
    as CSV and as an HTML page with charts. Run it on any one server (read-only)."""
    first_day, last_day = first.date(), last.date()
    if last_day < first_day:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    engine = make_engine(settings_of(ctx).resolved_database_url, 1)
    try:
        require_migrated(engine)
        paths = _write(engine, first_day, last_day, out)
    except DatabaseNotMigrated as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    for path in paths:
        click.echo(str(path))


def _write(engine: Engine, first_day: date, last_day: date, out: Path) -> list[Path]:
    start, end = day_start(first_day), day_start(last_day + timedelta(days=1))
    with read_connection(engine) as conn:
        built = build_report(
            first_day,
            last_day,
            request_rows(conn, start, end),
            latency_rows(conn, start, end),
            availability_samples(conn, start, end),
            SystemClock().now(),
        )
    return write_report(built, out)
