"""The unattended-call ledger in PostgreSQL: shared by scheduler processes, kept across
restarts (a scheduler restarted mid-day with an empty memory would spend the day's budget
again and meet a 429 — or a fifth call).

Rows ``(account, called_at)`` and a block per account ``(account, until)`` after a 429. A
`take` is one transaction under a transaction advisory lock on the account, so two processes
cannot both take the last call. Times come from the caller's clock (``now``), never from the
database's ``now()``, so a simulated week moves the ledger too.
"""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
from psycopg import sql

from stetgate.tpp.lifecycle.ledger import AccountKey
from stetgate.tpp.lifecycle.limits import DAY, BankLimits
from stetgate.tpp.lifecycle.postgres_connections import ConnectionPool, advisory_key

DEFAULT_TABLE = "tpp_unattended_calls"


class PostgresLedger:
    """`UnattendedLedger` in tables ``<table>`` and ``<table>_blocks`` (created on first use)."""

    def __init__(self, conninfo: str, *, table: str = DEFAULT_TABLE) -> None:
        self._pool = ConnectionPool(conninfo)
        self._name = table
        self._calls = sql.Identifier(table)
        self._blocks = sql.Identifier(f"{table}_blocks")
        self._ready = False

    def close(self) -> None:
        self._pool.close()

    def drop_schema(self) -> None:
        with self._pool.connection() as conn:
            for table in (self._calls, self._blocks):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        self._ready = False

    def _create(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(self._name, ""),))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (account text NOT NULL, "
                    "called_at timestamptz NOT NULL)"
                ).format(self._calls)
            )
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (account, called_at)").format(
                    sql.Identifier(f"{self._name}_account"), self._calls
                )
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (account text PRIMARY KEY, "
                    "until timestamptz NOT NULL)"
                ).format(self._blocks)
            )
        self._ready = True

    @staticmethod
    def _id(account: AccountKey) -> str:
        return json.dumps([account.bank, account.psu_key, account.account])

    def _count(
        self, conn: psycopg.Connection, account: str, now: datetime, limits: BankLimits
    ) -> int:
        blocked = conn.execute(
            sql.SQL("SELECT until FROM {} WHERE account = %s").format(self._blocks), (account,)
        ).fetchone()
        if blocked is not None and now < blocked[0]:
            return limits.unattended_per_day
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE account = %s AND called_at >= %s").format(
                self._calls
            ),
            (account, limits.window_start(now)),
        ).fetchone()
        return int(row[0]) if row else 0

    def used(self, account: AccountKey, now: datetime, limits: BankLimits) -> int:
        with self._pool.connection() as conn:
            if not self._ready:
                self._create(conn)
            return self._count(conn, self._id(account), now, limits)

    def take(self, account: AccountKey, now: datetime, limits: BankLimits) -> bool:
        name = self._id(account)
        with self._pool.connection() as conn:
            if not self._ready:
                self._create(conn)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(self._name, name),))
                if self._count(conn, name, now, limits) >= limits.unattended_per_day:
                    return False
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE account = %s AND called_at < %s").format(
                        self._calls
                    ),
                    (name, now - 2 * DAY),
                )
                conn.execute(
                    sql.SQL("INSERT INTO {} (account, called_at) VALUES (%s, %s)").format(
                        self._calls
                    ),
                    (name, now),
                )
                return True

    def exhausted(self, account: AccountKey, now: datetime, limits: BankLimits) -> None:
        with self._pool.connection() as conn:
            if not self._ready:
                self._create(conn)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {0} (account, until) VALUES (%s, %s) ON CONFLICT (account) "
                    "DO UPDATE SET until = GREATEST({0}.until, EXCLUDED.until)"
                ).format(self._blocks),
                (self._id(account), limits.window_end(now)),
            )
