"""The page a PSU sees when the bank's database did not answer in time or is unreachable.

A statement or lock timeout, or a database outage (`stetgate.store.db.DatabaseUnavailable`),
left the request's transaction uncommitted, so nothing changed: the page says so, in the
PSU's language, with status 503 and ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3)
— never a stack trace or a 500.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stetgate.psu.rendering import render_page
from stetgate.psu.theme import theme_of
from stetgate.store.db import RETRY_AFTER_SECONDS


def unavailable_page(request: Request) -> Response:
    theme = theme_of(request)
    response = render_page(
        theme,
        "message.html",
        lang=theme.request_language(request),
        status_code=503,
        title_key="busy_title",
        body_key="busy_body",
        detail="",
        lang_toggle=request.url.path if request.method == "GET" else None,
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


__all__ = ["unavailable_page"]
