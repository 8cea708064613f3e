"""The one log line of a request the database could not serve.

Every API answers `stetgate.store.db.DatabaseUnavailable` with its own 503 (OAuth
``temporarily_unavailable``, the STET error body, the register API's error, the PSU page); each
of those answers calls `log_unavailable` once. One WARNING line per request — method, path,
X-Request-ID, the driver's reason — and no traceback: during a database restart a worker meets
dozens of these a second, and the operator needs the count and the cause, not 50 identical
stacks (before this module each was an "Exception in ASGI application" traceback and a bare
plain-text 500).
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.types import Scope

from stetgate.serving.request_id import request_id_of
from stetgate.store.db import DatabaseTimeout, DatabaseUnavailable

logger = logging.getLogger("stetgate.database")


def log_unavailable(scope: Scope, exc: DatabaseUnavailable) -> None:
    """WARNING ``database unavailable on POST /path (X-Request-ID …): reason``; the reason is
    the driver's error class, SQLSTATE and first line (never statement parameters)."""
    logger.warning(
        "database %s on %s %s (X-Request-ID %s): %s",
        "timeout" if isinstance(exc, DatabaseTimeout) else "unavailable",
        scope.get("method"),
        scope.get("path"),
        request_id_of(Headers(scope=scope)),
        exc.reason,
    )


__all__ = ["log_unavailable"]
