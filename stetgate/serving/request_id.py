"""``X-Request-ID``: the one reader of the correlation id every API answer echoes.

STET v1.4.2 Part II §3 makes ``X-Request-ID`` mandatory on resource-API requests and echoed on
answers; the register and OAuth endpoints accept it for tracing. A value is echoed or stored
(audit column, 100 characters) only when well formed, so a hostile header cannot inject
control characters into responses or logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_LENGTH = 100
"""``audit_events.request_id`` is String(100)."""
REQUEST_ID_PATTERN = re.compile(rf"[!-~]{{1,{REQUEST_ID_MAX_LENGTH}}}")
"""Visible ASCII, 1-100 characters (UUIDs in practice); fits the audit column."""


_KEY = REQUEST_ID_HEADER.lower()
"""``headers`` are looked up in lower case (ASGI names; Starlette's `Headers` accepts any)."""


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The request's X-Request-ID if it is present and well formed (safe to echo), else None."""
    value = headers.get(_KEY)
    if value is None or REQUEST_ID_PATTERN.fullmatch(value) is None:
        return None
    return value


def request_id_sent(headers: Mapping[str, str]) -> bool:
    """Whether the request carries an X-Request-ID at all, well formed or not (to tell a
    missing header from a malformed one when `request_id_of` gave None)."""
    return headers.get(_KEY) is not None
