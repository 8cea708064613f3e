"""A few idle psycopg connections shared by the threads of one process (autocommit), and the
64-bit advisory-lock keys (PostgreSQL §13.3.5) the PostgreSQL store and ledger take."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

IDLE_CONNECTIONS = 4


def advisory_key(namespace: str, key: str) -> int:
    """64 bits of SHA-256 over ``namespace`` (a table) and ``key``, signed like ``bigint``."""
    digest = hashlib.sha256(f"{namespace}\x00{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ConnectionPool:
    def __init__(self, conninfo: str, idle: int = IDLE_CONNECTIONS) -> None:
        self.conninfo = conninfo
        self._idle_max = idle
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    def take(self) -> psycopg.Connection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return psycopg.connect(self.conninfo, autocommit=True)

    def give_back(self, conn: psycopg.Connection) -> None:
        with self._lock:
            if len(self._idle) < self._idle_max and not conn.closed:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one use; dropped instead of pooled when the server failed it."""
        conn = self.take()
        try:
            yield conn
        except psycopg.OperationalError:
            conn.close()
            raise
        self.give_back(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
