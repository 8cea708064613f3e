"""``INSERT … ON CONFLICT DO UPDATE`` on SQLite and PostgreSQL alike.

Both dialects support the same upsert (SQLite ≥ 3.24, PostgreSQL ≥ 9.5) and ``RETURNING``
(SQLite ≥ 3.35), but SQLAlchemy exposes it through per-dialect ``insert`` constructs; this
picks the one of the connection so repository code stays dialect-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement


def upsert(
    conn: Connection,
    table: Table,
    values: Mapping[str, Any],
    *,
    keys: Sequence[str],
    update: Mapping[str, Any],
    where: ColumnElement[bool] | None = None,
) -> postgresql.Insert | sqlite.Insert:
    """Insert ``values``; on a conflict on ``keys``, apply ``update`` (only if ``where`` holds)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(**values)
        return pg.on_conflict_do_update(index_elements=list(keys), set_=dict(update), where=where)
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(**values)
        return lite.on_conflict_do_update(index_elements=list(keys), set_=dict(update), where=where)
    raise ValueError(f"stetgate runs on SQLite and PostgreSQL, not {dialect!r}")
