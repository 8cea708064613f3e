"""The demo bank's "phone": what a sandbox shows developers in place of a real customer's
authenticator and banking app. Routed only when ``enable_demo_pages`` is on (never in
production: anyone who knows a PSU id sees its current one-time code).

``GET /demo/phone`` asks for a PSU id; the phone view (a POST, so the id stays out of URLs and
logs) shows the current TOTP code and the pending decoupled challenges with Approve / Reject.
Forms carry a CSRF token bound to a random cookie by HMAC (double submit, keyed with the
instance cookie key), so another site cannot approve a challenge through a developer's browser.

A form's directory lookups, challenge answer and pending-challenge list run in one hop off the
event loop (`stetgate.serving.blocking`: the directory is a bank port, the challenges are in
the database); the page is rendered back on the loop.

With ``sca_http_url`` set the challenges live in the bank's SCA service, not in stetgate's
database: the phone lists and answers them there (`stetgate.sca_http.demo_app`, the demo
service's app endpoints), and the service calls stetgate back or is polled, as a real bank's
would. A service that does not answer gives the 503 page.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stetgate.bank.sca import ScaServiceUnavailable
from stetgate.demo.psu_directory import DatabasePsuDirectory
from stetgate.demo.totp import seconds_left_in_step
from stetgate.psu.decoupled import PendingChallenge, answer_challenge, pending_for
from stetgate.psu.rendering import Page, bad_form_page, render_page, show
from stetgate.psu.theme import theme_of
from stetgate.sca_http.demo_app import DemoApp, DemoAppError
from stetgate.secrets import new_secret, same_secret
from stetgate.services import Services, services_of
from stetgate.settings import Settings

PHONE_PATH = "/demo/phone"
CHALLENGE_PATH = "/demo/phone/challenge"
COOKIE_NAME = "stetgate-demo-phone"


def _csrf_for(services: Services, cookie_value: str) -> str:
    return hmac.new(
        services.keys.cookie_key, b"demo-phone:" + cookie_value.encode(), hashlib.sha256
    ).hexdigest()


def _render(
    request: Request,
    services: Services,
    cookie_value: str,
    *,
    status_code: int = 200,
    psu_id: str | None = None,
    code: str | None = None,
    seconds: int = 0,
    pending: Sequence[PendingChallenge] = (),
    notice: str | None = None,
    reference: str = "",
    unknown: bool = False,
) -> Response:
    theme = theme_of(request)
    response = render_page(
        theme,
        "demo_phone.html",
        lang=theme.request_language(request),
        status_code=status_code,
        csrf_token=_csrf_for(services, cookie_value),
        lang_toggle=PHONE_PATH,
        psu_id=psu_id,
        code=code,
        seconds=seconds,
        pending=pending,
        notice=notice,
        reference=reference,
        unknown=unknown,
    )
    response.set_cookie(
        COOKIE_NAME,
        cookie_value,
        path="/demo",
        secure=services.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


async def _checked_form(request: Request, services: Services) -> tuple[dict[str, str], str] | None:
    cookie_value = request.cookies.get(COOKIE_NAME, "")
    form = await request.form(max_files=0, max_fields=10)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if (
        not cookie_value
        or len(cookie_value) > 100
        or not same_secret(values.get("csrf_token", ""), _csrf_for(services, cookie_value))
    ):
        return None
    return values, cookie_value


def _phone_view(
    request: Request,
    services: Services,
    cookie_value: str,
    psu_id: str,
    *,
    notice: str | None = None,
    reference: str = "",
) -> Page:
    """The phone of ``psu_id``: its current code and pending challenges. Blocking (in the
    form's hop)."""
    directory = services.psus
    now = services.clock.now()
    psu = directory.find(psu_id)
    if psu is None:
        return partial(_render, request, services, cookie_value, unknown=True, status_code=404)
    code = (
        directory.current_totp(psu.psu_id, now)
        if isinstance(directory, DatabasePsuDirectory)
        else None
    )
    pending = _pending(services, psu.psu_id)
    return partial(
        _render,
        request,
        services,
        cookie_value,
        psu_id=psu.psu_id,
        code=code,
        seconds=seconds_left_in_step(now),
        pending=pending,
        notice=notice,
        reference=reference,
    )


async def phone_page(request: Request) -> Response:
    services = services_of(request)
    cookie_value = request.cookies.get(COOKIE_NAME) or new_secret()
    return _render(request, services, cookie_value[:100])


PhoneForm = Callable[[Request, Services, dict[str, str], str], Page]


def _checked(handler: PhoneForm) -> Callable[[Request], Awaitable[Response]]:
    """A POST of the phone page: refused (400, nothing done) unless its CSRF token matches
    the phone's cookie; ``handler`` gets the form values and the cookie, and runs in one hop
    off the event loop."""

    async def endpoint(request: Request) -> Response:
        services = services_of(request)
        checked = await _checked_form(request, services)
        if checked is None:
            return _bad_form(request)
        values, cookie_value = checked
        return await show(services, handler, request, services, values, cookie_value)

    return endpoint


def _show_psu(
    request: Request, services: Services, values: dict[str, str], cookie_value: str
) -> Page:
    return _phone_view(request, services, cookie_value, values.get("psu_id", "").strip())


def _answer(
    request: Request, services: Services, values: dict[str, str], cookie_value: str
) -> Page:
    psu_id = values.get("psu_id", "").strip()
    action = values.get("action")
    reference = values.get("challenge_id", "")
    if action not in ("approve", "reject"):
        return _phone_view(request, services, cookie_value, psu_id)
    done = _answer_challenge(services, reference, approve=action == "approve", psu_id=psu_id)
    notice = (
        ("phone_done_approved" if action == "approve" else "phone_done_rejected")
        if done
        else "phone_done_missing"
    )
    return _phone_view(request, services, cookie_value, psu_id, notice=notice, reference=reference)


def _pending(services: Services, psu_id: str) -> list[PendingChallenge]:
    settings = services.settings
    if settings.sca_http_url is None:
        return pending_for(services.engine, settings, psu_id, services.clock.now())
    try:
        return DemoApp(settings.sca_http_url).pending(psu_id)
    except DemoAppError as exc:
        raise ScaServiceUnavailable(str(exc)) from exc


def _answer_challenge(services: Services, reference: str, *, approve: bool, psu_id: str) -> bool:
    settings = services.settings
    if settings.sca_http_url is None:
        return answer_challenge(
            services.engine,
            settings,
            reference,
            approve=approve,
            now=services.clock.now(),
            psu_id=psu_id,
        )
    try:
        return DemoApp(settings.sca_http_url).answer(reference, approve=approve, psu_id=psu_id)
    except DemoAppError as exc:
        raise ScaServiceUnavailable(str(exc)) from exc


def _bad_form(request: Request) -> Response:
    theme = theme_of(request)
    return bad_form_page(theme, theme.request_language(request), PHONE_PATH)


def routes(settings: Settings) -> list[BaseRoute]:
    if not settings.enable_demo_pages:
        return []
    return [
        Route(PHONE_PATH, phone_page, methods=["GET"]),
        Route(PHONE_PATH, _checked(_show_psu), methods=["POST"]),
        Route(CHALLENGE_PATH, _checked(_answer), methods=["POST"]),
    ]
