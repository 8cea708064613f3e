"""Stale PostgreSQL connections are replaced before a request uses them, without a round trip.

After a PostgreSQL restart, a failover or ``pg_terminate_backend``, every pooled connection is
dead, and the first request on each one used to fail (a 500 before `DatabaseUnavailable`, a
503 since). SQLAlchemy's ``pool_pre_ping`` avoids that with a ``SELECT 1`` round trip at every
checkout. Measured on the 2-core box against the local PostgreSQL (checkout + ``SELECT 1`` +
checkin, best of 9 runs of 2,000): 176 µs without a check, 218 µs with pre-ping (client CPU
119 → 148 µs), 183 µs with the check below (client CPU 125 µs); the check alone is 1.3 µs
(docs/security.md#faults-and-fuzzing).

The server says goodbye before it goes: a backend ended by a shutdown (smart, fast or
immediate), by ``pg_terminate_backend`` or by a crash sends a FATAL ``ErrorResponse``
(SQLSTATE 57P01/57P02) or at least closes its socket (EOF). An *idle* connection — one in the
pool, or the refresh store's between batches — has nothing to read otherwise (stetgate never
``LISTEN``\\s), so a readable socket means the connection is gone. Asking the kernel costs one
non-blocking ``poll`` (~1–2 µs), no round trip: `connection_is_stale`.

What it cannot see: a peer that vanished without a word (a network partition, a host power
loss). TCP keepalives (`KEEPALIVE_OPTIONS`) bound how long such a connection lingers in the
pool, and `stetgate.store.db.DatabaseUnavailable` answers the request that meets it.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc

KEEPALIVE_OPTIONS = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
"""libpq TCP keepalives: a connection to a silently vanished server is dropped after ~60 s
idle instead of the kernel's two hours."""


def connection_is_stale(driver_connection: Any) -> bool:
    """Whether an idle psycopg connection is closed, broken, or has something to read (the
    server's termination notice, or EOF). Never blocks."""
    if driver_connection.closed or driver_connection.broken:
        return True
    try:
        descriptor = driver_connection.pgconn.socket
    except Exception:  # psycopg raises OperationalError when libpq has no socket any more
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def replace_stale_connections(engine: Engine) -> None:
    """Check each PostgreSQL connection as it leaves ``engine``'s pool; a stale one raises
    SQLAlchemy's ``DisconnectionError`` (which makes the pool open a fresh one, up to three
    times) and invalidates the whole pool: when one connection was ended by a restart, its
    siblings were too, and are replaced at their next checkout without being asked."""

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if connection_is_stale(dbapi_connection):
            error = sa_exc.DisconnectionError("the server ended this pooled connection")
            error.invalidate_pool = True
            raise error

    event.listen(engine, "checkout", on_checkout)


__all__ = ["KEEPALIVE_OPTIONS", "connection_is_stale", "replace_stale_connections"]
