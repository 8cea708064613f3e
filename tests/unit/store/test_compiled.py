"""Statements compiled once and run on the raw DBAPI cursor write and read exactly what
SQLAlchemy's own execution writes and reads, on each database."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    Date,
    Engine,
    String,
    bindparam,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from stetgate.store.compiled import CompiledStatement
from stetgate.store.db import make_engine
from stetgate.store.schema import JsonText, UtcDateTime, audit_events

pytestmark = pytest.mark.postgres  # bind/result processing differs by dialect

NOW = datetime(2026, 11, 26, 12, 30, 15, 250_000, tzinfo=UTC)
PARIS = datetime(2026, 11, 26, 13, 30, 15, 250_001, tzinfo=timezone(timedelta(hours=1)))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 1)
    yield engine
    engine.dispose()


def _run(engine: Engine, statement: CompiledStatement, values: Mapping[str, Any]) -> list[Any]:
    """Execute on a raw DBAPI connection, as the hot paths do; commit; processed rows."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(statement.sql, statement.parameters(values))
        fetched = cursor.fetchall() if cursor.description is not None else []
        connection.commit()
        return [tuple(statement.row(raw)) for raw in fetched]
    finally:
        connection.close()


def _stored(engine: Engine, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The stored audit rows as the driver returns them, without any type processing."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT at, event, detail FROM audit_events WHERE id IN (:a, :b) ORDER BY id"),
            {"a": ids[0], "b": ids[1]},
        )
        return [tuple(row) for row in rows]


def test_a_returning_insert_stores_and_returns_what_core_does(engine: Engine) -> None:
    statement = (
        insert(audit_events)
        .values(
            at=bindparam("at", type_=UtcDateTime()),
            event=bindparam("event", type_=String()),
            detail=bindparam("detail", type_=JsonText()),
        )
        .returning(audit_events.c.id, audit_events.c.at, audit_events.c.detail)
    )
    values = {"at": PARIS, "event": "e", "detail": {"b": [1, 2], "a": "é"}}
    compiled = CompiledStatement(statement, engine.dialect)
    assert compiled.columns == ("id", "at", "detail")
    with engine.begin() as conn:
        core = tuple(conn.execute(statement, values).one())
    raw = _run(engine, compiled, values)
    assert len(raw) == 1
    assert raw[0][1:] == core[1:] == (PARIS, {"a": "é", "b": [1, 2]})
    assert raw[0][1].tzinfo is not None
    stored = _stored(engine, [core[0], raw[0][0]])
    assert stored[0] == stored[1]  # byte for byte the same storage (naive UTC text on SQLite)


def test_literals_are_processed_once_and_results_like_core(engine: Engine) -> None:
    statement = select(
        literal({"z": 1, "a": None}, JsonText()).label("doc"),
        literal(PARIS, UtcDateTime()).label("moment"),
        literal("it's", String()).label("word"),
        bindparam("echo", type_=UtcDateTime()).label("echo"),
    )
    compiled = CompiledStatement(statement, engine.dialect)
    values = {"echo": NOW}
    with engine.connect() as conn:
        core = tuple(conn.execute(statement, values).one())
    assert _run(engine, compiled, values) == [core]
    assert core == ({"a": None, "z": 1}, PARIS, "it's", NOW)


def test_a_parameter_used_twice_is_given_once(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(audit_events),
            [
                {"at": NOW, "event": "x", "client_id": "c1", "org_id": "o1"},
                {"at": NOW, "event": "x", "client_id": "o2", "org_id": "c2"},
                {"at": NOW, "event": "x", "client_id": "c3", "org_id": "o3"},
            ],
        )
    statement = (
        select(audit_events.c.client_id)
        .where(
            or_(
                audit_events.c.client_id == bindparam("who"),
                audit_events.c.org_id == bindparam("who"),
            ),
            audit_events.c.event == "x",
        )
        .order_by(audit_events.c.id)
    )
    compiled = CompiledStatement(statement, engine.dialect)
    assert _run(engine, compiled, {"who": "c2"}) == [("o2",)]
    assert _run(engine, compiled, {"who": "c3"}) == [("c3",)]


def test_update_returning_and_dates(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(audit_events).values(at=NOW, event="e", detail={"n": 1}))
    later = NOW + timedelta(days=1, microseconds=1)
    statement = (
        update(audit_events)
        .where(audit_events.c.event == bindparam("event"))
        .values(at=bindparam("at"), detail=bindparam("detail"))
        .returning(
            audit_events.c.at,
            audit_events.c.detail,
            literal(date(2026, 11, 26), Date()).label("day"),
            bindparam("next_day", type_=Date()).label("next_day"),
        )
    )
    values = {"event": "e", "at": later, "detail": {"n": 2}, "next_day": date(2026, 11, 27)}
    compiled = CompiledStatement(statement, engine.dialect)
    assert compiled.columns == ("at", "detail", "day", "next_day")
    assert _run(engine, compiled, values) == [
        (later, {"n": 2}, date(2026, 11, 26), date(2026, 11, 27))
    ]
    with engine.connect() as conn:
        assert tuple(conn.execute(select(audit_events.c.at, audit_events.c.detail)).one()) == (
            later,
            {"n": 2},
        )


def test_result_columns_are_what_the_statement_returns(engine: Engine) -> None:
    """An ``INSERT`` without ``RETURNING`` returns nothing, except the primary key that
    PostgreSQL's compiler asks for on a single-row ``INSERT``."""
    compiled = CompiledStatement(
        insert(audit_events).values(at=bindparam("at", type_=UtcDateTime()), event="e"),
        engine.dialect,
    )
    implicit = ("id",) if engine.dialect.name == "postgresql" else ()
    assert compiled.columns == implicit
    assert _run(engine, compiled, {"at": NOW}) == ([(1,)] if implicit else [])
    with engine.connect() as conn:
        assert conn.execute(select(audit_events.c.at, audit_events.c.event)).all() == [(NOW, "e")]


def test_expanding_parameters_are_refused(engine: Engine) -> None:
    statement = select(audit_events.c.id).where(
        audit_events.c.event.in_(bindparam("events", expanding=True))
    )
    with pytest.raises(ValueError, match="expanding"):
        CompiledStatement(statement, engine.dialect)
