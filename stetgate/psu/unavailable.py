"""The page a PSU sees when the bank's database did not answer in time or is unreachable.

A statement or lock timeout, or a database outage (`stetgate.store.db.DatabaseUnavailable`),
left the request's transaction uncommitted, so nothing changed: the page says so, in the
PSU's language, with status 503 and ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3)
— never a stack trace or a 500. Its language links repeat a GET (with its query) or, after a
form, lead to the journey's current screen; the help paragraph says how to reach the bank.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from stetgate.psu.rendering import render_page
from stetgate.psu.theme import theme_of
from stetgate.psu.visits import LOGIN_PATH
from stetgate.store.db import RETRY_AFTER_SECONDS


def _same_page(request: Request) -> str:
    """The page asked for, without its ``lang``: its language links try it again (a GET is
    safe to repeat — the page says to try again anyway — and ``/authorize`` keeps its query)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


def unavailable_page(request: Request) -> Response:
    theme = theme_of(request)
    response = render_page(
        theme,
        "message.html",
        lang=theme.request_language(request),
        status_code=503,
        title_key="busy_title",
        body_key="busy_body",
        lang_toggle=_same_page(request) if request.method == "GET" else LOGIN_PATH,
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


__all__ = ["unavailable_page"]
