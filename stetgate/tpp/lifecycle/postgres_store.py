"""Sealed tokens in PostgreSQL, for many PSUs and processes on many hosts (psycopg 3).

One table (``tpp_tokens`` unless told otherwise; `create_schema` creates it, and the first
use does if it is missing): ``store_key`` primary key, ``version``, ``sealed``. A write is one
statement — ``INSERT … ON CONFLICT DO NOTHING`` to create, ``UPDATE … WHERE version = %s``
otherwise — so two writers can never both pass the same precondition.

The refresh lock is a session advisory lock (PostgreSQL §13.3.5) on a 64-bit key derived from
the table and the store key, held on a connection of its own until released; ``lock_timeout``
bounds the wait, and PostgreSQL drops the lock if the process or its connection dies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from stetgate.tpp.lifecycle.errors import LockTimeout, VersionConflict
from stetgate.tpp.lifecycle.postgres_connections import ConnectionPool, advisory_key
from stetgate.tpp.lifecycle.store import ABSENT, Sealed

DEFAULT_TABLE = "tpp_tokens"


class _AdvisoryHandle:
    def __init__(self, pool: ConnectionPool, conn: psycopg.Connection, lock_id: int) -> None:
        self._pool = pool
        self._conn: psycopg.Connection | None = conn
        self._lock_id = lock_id

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_id,))
        except psycopg.Error:
            conn.close()  # the session ends, and its advisory locks with it
            return
        self._pool.give_back(conn)


class PostgresTokenStore:
    """`TokenStore` and `RefreshLock` on a PostgreSQL database (``conninfo``: a libpq URL)."""

    def __init__(self, conninfo: str, *, table: str = DEFAULT_TABLE) -> None:
        self._pool = ConnectionPool(conninfo)
        self._table = sql.Identifier(table)
        self._table_name = table
        self._schema_ready = False

    @property
    def conninfo(self) -> str:
        return self._pool.conninfo

    @property
    def table(self) -> str:
        return self._table_name

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn:
            if not self._schema_ready:
                self._create(conn)
            yield conn

    def close(self) -> None:
        self._pool.close()

    # --- schema --------------------------------------------------------------------------------
    def _create(self, conn: psycopg.Connection) -> None:
        """``CREATE TABLE IF NOT EXISTS`` under a transaction advisory lock: two processes
        creating the table at once would otherwise collide on the catalog's unique index."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_id("\x00schema"),))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (store_key text PRIMARY KEY, "
                    "version bigint NOT NULL, sealed text NOT NULL)"
                ).format(self._table)
            )
        self._schema_ready = True

    def create_schema(self) -> None:
        with self._connection() as conn:
            self._create(conn)

    def drop_schema(self) -> None:
        with self._connection() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))
        self._schema_ready = False

    # --- TokenStore ----------------------------------------------------------------------------
    def get(self, key: str) -> Sealed | None:
        with self._connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT sealed, version FROM {} WHERE store_key = %s").format(self._table),
                (key,),
            ).fetchone()
        return Sealed(str(row[0]), int(row[1])) if row else None

    def put(self, key: str, value: str, expected_version: int) -> int:
        with self._connection() as conn:
            if expected_version == ABSENT:
                statement = sql.SQL(
                    "INSERT INTO {} (store_key, version, sealed) VALUES (%s, 1, %s) "
                    "ON CONFLICT (store_key) DO NOTHING RETURNING version"
                ).format(self._table)
                row = conn.execute(statement, (key, value)).fetchone()
            else:
                statement = sql.SQL(
                    "UPDATE {} SET version = version + 1, sealed = %s "
                    "WHERE store_key = %s AND version = %s RETURNING version"
                ).format(self._table)
                row = conn.execute(statement, (value, key, expected_version)).fetchone()
        if row is None:
            raise VersionConflict(f"{key!r} is not at version {expected_version}")
        return int(row[0])

    def delete(self, key: str) -> bool:
        with self._connection() as conn:
            cursor = conn.execute(
                sql.SQL("DELETE FROM {} WHERE store_key = %s").format(self._table), (key,)
            )
            return cursor.rowcount > 0

    def stored_keys(self) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT store_key FROM {} ORDER BY store_key").format(self._table)
            ).fetchall()
        return [str(row[0]) for row in rows]

    # --- RefreshLock ---------------------------------------------------------------------------
    def lock_id(self, key: str) -> int:
        return advisory_key(self._table_name, key)

    def acquire(self, key: str, timeout: float) -> _AdvisoryHandle:
        conn = self._pool.take()
        lock_id = self.lock_id(key)
        try:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(
                    sql.Literal(f"{max(1, int(timeout * 1000))}ms")  # 0 would mean "no limit"
                )
            )
            conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
            conn.execute("RESET lock_timeout")
        except psycopg.errors.LockNotAvailable:
            conn.execute("RESET lock_timeout")
            self._pool.give_back(conn)
            raise LockTimeout(f"refresh lock still held after {timeout} s") from None
        except psycopg.Error:
            conn.close()
            raise
        return _AdvisoryHandle(self._pool, conn, lock_id)
