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
REQUEST_ID_PATTERN = re.compile(r"[!-~]{1,100}")
"""Visible ASCII, 1-100 characters (UUIDs in practice); fits the audit column."""


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The request's X-Request-ID if it is present and well formed (safe to echo), else None.
    ``headers`` is looked up in lower case (ASGI names; Starlette's `Headers` accepts any)."""
    value = headers.get("x-request-id")
    if value is None or REQUEST_ID_PATTERN.fullmatch(value) is None:
        return None
    return value
