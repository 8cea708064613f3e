"""The statistics rows: additive upserts from the workers, range reads for the report.

``INSERT … ON CONFLICT (key) DO UPDATE SET n = n + excluded.n`` on both SQLite (≥ 3.24) and
PostgreSQL: every worker adds its own counts to the same minute rows, so no worker needs to
know about the others and a retried flush never overwrites. Rows are written in key order, so
two workers flushing the same minutes on PostgreSQL lock them in the same order (no deadlock).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Column, Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from stetgate.statistics.availability import MinuteSample
from stetgate.statistics.counts import MinuteCounts
from stetgate.store.schema import (
    statistics_availability,
    statistics_latency,
    statistics_requests,
)


def _at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


@cache
def _upsert(dialect_name: str, table: Table, keys: tuple[str, ...]) -> Any:
    """The additive upsert of ``table``, built once per dialect: a statement is immutable, and
    building it per flush made a graph of alias columns (reference cycles) each time that
    waited for the cyclic collector (`stetgate.serving.heap`)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    added: dict[str, Any] = {
        column.name: column + statement.excluded[column.name]
        for column in table.columns
        if column.name not in keys
    }
    return statement.on_conflict_do_update(index_elements=list(keys), set_=added)


def _add(conn: Connection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    rows.sort(key=lambda row: tuple(row[k] for k in keys))
    conn.execute(_upsert(conn.dialect.name, table, keys), rows)


def add_counts(conn: Connection, counts: MinuteCounts) -> None:
    """Add one worker's counts to the rows (one transaction: the caller's)."""
    _add(
        conn,
        statistics_requests,
        ("minute", "family", "status_class"),
        [
            {
                "minute": _at(m),
                "family": f,
                "status_class": c,
                "requests": n,
                "latency_us": us,
            }
            for (m, f, c), (n, us) in counts.requests.items()
        ],
    )
    _add(
        conn,
        statistics_latency,
        ("minute", "family", "bucket"),
        [
            {"minute": _at(m), "family": f, "bucket": b, "requests": n}
            for (m, f, b), n in counts.latency.items()
        ],
    )
    _add(
        conn,
        statistics_availability,
        ("minute",),
        [
            {"minute": _at(m), "probes_up": up, "probes_down": down, "failure_runs": runs}
            for m, (up, down, runs) in counts.availability.items()
        ],
    )


@dataclass(frozen=True)
class RequestRow:
    minute: datetime
    family: str
    status_class: int
    requests: int
    latency_us: int


@dataclass(frozen=True)
class LatencyRow:
    minute: datetime
    family: str
    bucket: int
    requests: int


def _between(conn: Connection, table: Table, start: datetime, end: datetime) -> Iterator[Any]:
    minute: Column[Any] = table.c.minute
    query = select(table).where(minute >= start, minute < end).order_by(minute)
    yield from conn.execution_options(yield_per=10_000).execute(query)


def request_rows(conn: Connection, start: datetime, end: datetime) -> Iterator[RequestRow]:
    """Rows of minutes in ``[start, end)``."""
    for row in _between(conn, statistics_requests, start, end):
        yield RequestRow(row.minute, row.family, row.status_class, row.requests, row.latency_us)


def latency_rows(conn: Connection, start: datetime, end: datetime) -> Iterator[LatencyRow]:
    for row in _between(conn, statistics_latency, start, end):
        yield LatencyRow(row.minute, row.family, row.bucket, row.requests)


def availability_samples(
    conn: Connection, start: datetime, end: datetime
) -> dict[datetime, MinuteSample]:
    return {
        row.minute: MinuteSample(row.probes_up, row.probes_down, row.failure_runs)
        for row in _between(conn, statistics_availability, start, end)
    }
