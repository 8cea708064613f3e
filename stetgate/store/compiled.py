"""Core statements compiled once and run on a raw DBAPI cursor, on the hot paths.

The refresh statement (`stetgate.oauth.refresh_store`) and the resource API's reads
(`stetgate.store.reading.CompiledRead`) are SQLAlchemy Core constructs over
`stetgate.store.schema`, so columns and types are checked, but they are executed on the DBAPI
cursor: SQLAlchemy's per-execution set-up (execution context, result metadata, row objects)
costs as much as or more than the statements themselves on the 2-core box (≈50 µs of a ≈70 µs
token lookup; ≈200 µs per refresh against ≈85 µs for the SQLite statement alone).

`CompiledStatement` keeps what SQLAlchemy would do to values: each parameter goes through its
type's bind processor and each result column through its result processor, for the dialect
the statement was compiled for (``UtcDateTime`` naive-UTC storage on SQLite, ``JsonText``,
SQLite's string dates and integer booleans). So rows written or read this way are identical
to Core-executed ones (``tests/unit/store/test_compiled.py``).

- *Parameters* are the statement's ``bindparam`` names. A parameter used twice is passed once.
- *Literals* of the statement (``status == 'active'``, ``literal('…')``) keep their compiled
  values, processed once at compile time.
- The DBAPI shape follows the dialect's paramstyle: a tuple in the statement's order for
  ``qmark`` (SQLite), a dict for ``pyformat`` (psycopg).
- *Results*: the statement's result columns in order (a ``SELECT``'s columns; the ``RETURNING``
  of an ``UPDATE``/``INSERT``, including the primary key PostgreSQL's compiler returns from a
  single-row ``INSERT``); only the columns whose type has a result processor on the dialect
  are touched.
- Expanding parameters (``IN`` with a list bound at execution) are refused: their SQL is only
  known per execution. Write a fixed number of slots instead.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any]


class CompiledStatement:
    """One Core statement compiled for ``dialect``: its SQL, its DBAPI parameters
    (`parameters`), and its result rows converted back to Python values (`row`)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {type(statement).__name__}")
        self.sql: str = compiled.string
        self._binders: dict[str, Processor] = {}
        self._fixed: dict[str, Any] = {}
        """The statement's own literals, already processed."""
        for bind, name in compiled.bind_names.items():  # (``binds`` has anonymous keys too)
            if bind.expanding:
                raise ValueError(f"expanding parameter {name!r}: give it fixed slots instead")
            binder = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if binder is not None:
                self._binders[name] = binder
            if not bind.required:
                value = bind.effective_value
                self._fixed[name] = value if binder is None else binder(value)
        order = tuple(compiled.positiontup or ()) if compiled.positional else ()
        self._in_order: Callable[[dict[str, Any]], tuple[Any, ...]] | None = (
            (lambda processed: (processed[order[0]],))
            if len(order) == 1
            else operator.itemgetter(*order)
            if order
            else (lambda _processed: ())
            if compiled.positional
            else None
        )
        returning = compiled.effective_returning  # DML: RETURNING, implicit ones included
        exported: Sequence[Any] = list(
            getattr(statement, "exported_columns", ()) if returning is None else returning
        )
        self.columns: tuple[str, ...] = tuple(str(column.key) for column in exported)
        """The result columns' keys (labels), in order; empty without results."""
        self._results: tuple[tuple[int, Processor], ...] = tuple(
            (index, processor)
            for index, column in enumerate(exported)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The DBAPI parameters for ``values`` (by ``bindparam`` name), each processed once."""
        processed = dict(self._fixed)
        binders = self._binders
        for name, value in values.items():
            binder = binders.get(name)
            processed[name] = value if binder is None else binder(value)
        return processed if self._in_order is None else self._in_order(processed)

    def row(self, raw: Sequence[Any]) -> Sequence[Any]:
        """One fetched row as Python values (result processors applied); ``raw`` itself when
        no column needs processing."""
        if not self._results:
            return raw
        row = list(raw)
        for index, processor in self._results:
            row[index] = processor(row[index])
        return row


__all__ = ["CompiledStatement", "Processor"]
