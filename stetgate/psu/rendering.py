"""Rendering PSU pages, with the headers every one of them carries.

Pages are server-rendered Jinja2 with autoescaping on (the TPP's ``client_name``, the PSU's
inputs and the bank's theme texts are text, never markup), in the app's theme
(`stetgate.psu.theme`: its templates, texts, logo and colours). Each response carries:

- ``Content-Security-Policy`` (CSP Level 3): nothing inline, scripts and styles only from the
  bank's own static files, ``connect-src 'self'`` for the decoupled-SCA status poll,
  ``frame-ancestors 'none'`` against click-jacking, and ``form-action 'self'`` plus the TPP's
  callback origin — Chrome applies ``form-action`` to the redirect that answers a form, and the
  consent, timeout and late-submission answers are 303s to the TPP;
- ``X-Frame-Options: DENY`` for browsers without ``frame-ancestors``;
- ``Cache-Control: no-store`` so no page, code or session state lands in a shared cache or
  the back-forward cache (RFC 9111 §5.2.2.5).

A request step does its waiting (database, the bank's ports) in one hop off the event loop and
returns a `Page`; `show` renders it back on the loop: rendering is CPU work that waits on
nothing, so it does not take one of the bounded pool's threads (`stetgate.serving.blocking`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec

from starlette.responses import HTMLResponse, RedirectResponse, Response

from stetgate.psu.theme import Theme
from stetgate.services import Services

P = ParamSpec("P")

Page = Callable[[], Response]
"""The response a request step chose inside its hop, still to be rendered (on the loop)."""

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
}


def content_security_policy(form_origin: str | None = None) -> str:
    form_action = "'self'" if form_origin is None else f"'self' {form_origin}"
    return (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        f"connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def render_page(
    theme: Theme,
    template: str,
    *,
    lang: str,
    status_code: int = 200,
    form_origin: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render `template` of `theme` in `lang` (one of the theme's languages) with the PSU-page
    headers."""
    context.setdefault("deadline_seconds", None)
    context.setdefault("csrf_token", None)
    context.setdefault("lang_toggle", None)
    context.setdefault("detail", "")  # read by themes' message.html copied before `detail_key`
    html = theme.environment.get_template(template).render(
        lang=lang, t=theme.texts[lang], **context
    )
    headers = dict(PAGE_HEADERS)
    headers["Content-Security-Policy"] = content_security_policy(form_origin)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def redirect(url: str) -> Response:
    """303 See Other (RFC 9110 §15.4.4): after a POST the browser GETs the target."""
    headers = dict(PAGE_HEADERS)
    headers["Content-Security-Policy"] = content_security_policy()
    return RedirectResponse(url, status_code=303, headers=headers)


def bad_form_page(theme: Theme, lang: str, lang_toggle: str | None = None) -> Response:
    """400 for a form whose CSRF token is missing or wrong: the request changes nothing and
    the page does not say which check failed. ``lang_toggle``: a page its language links
    lead to (GET)."""
    return render_page(
        theme,
        "message.html",
        lang=lang,
        status_code=400,
        title_key="bad_form_title",
        body_key="bad_form_body",
        lang_toggle=lang_toggle,
    )


async def show(
    services: Services, step: Callable[P, Page], *args: P.args, **kwargs: P.kwargs
) -> Response:
    """Run ``step`` — one request step's database and port calls — in one hop off the event
    loop, then render the page it chose."""
    page = await services.blocking.run(step, *args, **kwargs)
    return page()
