"""What every PSU screen does before and after its own step
(docs/decisions.md#failed-attempts-and-timeouts; RTS (EU) 2018/389 Art. 4(3)).

`open_visit` applies the rules common to all screens, in order:

1. the signed session cookie must name a journey (else an error page: there is no trusted
   callback to send the PSU to);
2. a POST must carry the journey's ``csrf_token`` (constant-time comparison); a missing or
   wrong token gets a 400 page and changes nothing — not even the idle timer;
3. an ended journey shows its end page again (a late or repeated submission never acts twice);
4. an expired journey (idle or whole-journey limit, from the injected clock) ends *now* with
   the ``timeout`` outcome: the PSU goes back to the TPP with
   ``error=access_denied&error_description=timeout`` — also when the request is a late form;
5. a request for a screen that is not the current one is sent to the current one.

`screen` renders a journey page (restarting the idle timer and giving the page timer the
server-computed seconds left); the other helpers end a journey — timeout, too many failures,
sign-out — each with its audit event.

Nothing here waits on the event loop (`stetgate.serving.blocking`): `open_visit` reads the
journey and its TPP in one hop, and the helpers a page step calls (`screen`, `time_out`,
`failed_attempt`…) are synchronous — they write the journey and return a `Page` — so that a
handler runs all of its step's database and port calls in one hop (`show`) and renders back
on the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stetgate.bank.psus import Psu
from stetgate.oauth.callback import (
    AUTHENTICATION_FAILED,
    TIMEOUT,
    error_redirect,
    redirect_origin,
)
from stetgate.oauth.clients import (
    CertifiedOrganization,
    Client,
    certified_organization,
    get_client,
)
from stetgate.psu.journeys import (
    KIND_AUTHORIZE,
    OUTCOME_AUTHENTICATION_FAILED,
    OUTCOME_SIGNED_OUT,
    OUTCOME_TIMEOUT,
    STAGE_APPS,
    STAGE_CONSENT,
    STAGE_IDENTIFY,
    STAGE_METHOD,
    STAGE_SCA,
    Journey,
    count_failure,
    finish,
    load_journey,
    touch,
)
from stetgate.psu.rendering import (
    PAGE_HEADERS,
    Page,
    bad_form_page,
    redirect,
    render_page,
    show,
)
from stetgate.psu.theme import Theme, theme_of
from stetgate.psu.wiring import session_cookie
from stetgate.secrets import same_secret
from stetgate.services import Services, services_of
from stetgate.serving.request_id import request_id_of
from stetgate.store import audit_events
from stetgate.store.audit import record_event
from stetgate.store.audit_events import (
    AUTHORIZATION_FAILED,
    AUTHORIZATION_TIMED_OUT,
    SESSION_FAILED,
    SESSION_SIGNED_OUT,
    SESSION_TIMED_OUT,
)

LOGIN_PATH = "/psu/login"
METHOD_PATH = "/psu/sca/method"
SCA_PATH = "/psu/sca"
STATUS_PATH = "/psu/sca/status"
CONSENT_PATH = "/psu/consent"
TIMEOUT_PATH = "/psu/timeout"
CANCEL_PATH = "/psu/cancel"
APPS_PATH = "/psu/connected-apps"
APPS_REVOKE_PATH = "/psu/connected-apps/revoke"
SIGN_OUT_PATH = "/psu/sign-out"
CONTINUE_PATH = "/psu/session/continue"
STATIC_PATH = "/psu/static"

STAGE_PAGES = {
    STAGE_IDENTIFY: LOGIN_PATH,
    STAGE_METHOD: METHOD_PATH,
    STAGE_SCA: SCA_PATH,
    STAGE_CONSENT: CONSENT_PATH,
    STAGE_APPS: APPS_PATH,
}
LIVE_STAGES = frozenset(STAGE_PAGES)
MAX_FORM_FIELDS = 20
WARN_SECONDS = 60
"""The page warns this long before the idle limit (WCAG 2.2.1: at least 20 s to react)."""


@dataclass
class Visit:
    """One request on a live journey, after the common checks of `open_visit`."""

    request: Request
    services: Services
    now: datetime
    journey: Journey
    form: dict[str, str]
    lang: str
    client: Client | None
    """The TPP of an ``authorize`` journey (None for connected apps, or a removed client)."""

    @property
    def authorize(self) -> bool:
        return self.journey.kind == KIND_AUTHORIZE

    @property
    def client_name(self) -> str:
        client = self.client
        return client.name if client is not None else self.journey.request.client_id

    @property
    def certified_organization(self) -> CertifiedOrganization | None:
        """The TPP's legal name and organizationIdentifier from its certificate (UTS #39
        look-alike names: the consent page shows what no registration can choose)."""
        return certified_organization(self.client) if self.client is not None else None

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.request.headers)

    @property
    def theme(self) -> Theme:
        return theme_of(self.request)

    def audit(
        self,
        event: str,
        *,
        psu_id: str | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments of `record_event` for this journey (the journey is referred to by
        a prefix of its id digest, which is not the session secret)."""
        client = self.client
        return dict(
            event=event,
            client_id=self.journey.request.client_id or None,
            org_id=client.org_id if client else None,
            psu_id=psu_id if psu_id is not None else self.journey.psu_id,
            request_id=self.request_id,
            reason=reason,
            detail={"journey": self.journey.id_hash[:16], **(detail or {})},
        )


# --- the common request rules -------------------------------------------------------------
async def read_form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in values:
            values[key] = value
    return values


def request_lang(request: Request) -> str:
    return theme_of(request).request_language(request)


def load_visit(engine: Engine, session_id: str) -> tuple[Journey | None, Client | None]:
    """The journey of a session and, for an ``authorize`` journey, its TPP (one transaction;
    blocking: run it off the event loop)."""
    with engine.begin() as conn:
        journey = load_journey(conn, session_id)
        if journey is None or journey.kind != KIND_AUTHORIZE:
            return journey, None
        return journey, get_client(conn, journey.request.client_id)


async def open_visit(request: Request, stages: frozenset[str], *, post: bool) -> Visit | Response:
    services = services_of(request)
    now = services.clock.now()
    session_id = session_cookie(services).session_id(request)
    journey: Journey | None = None
    client: Client | None = None
    if session_id is not None:
        journey, client = await services.blocking.run(load_visit, services.engine, session_id)
    return await enter_visit(request, services, now, journey, client, stages, post=post)


async def enter_visit(
    request: Request,
    services: Services,
    now: datetime,
    journey: Journey | None,
    client: Client | None,
    stages: frozenset[str],
    *,
    post: bool,
) -> Visit | Response:
    """Rules 1–5 for a journey already read (`load_visit`)."""
    theme = theme_of(request)
    if journey is None:
        return render_page(
            theme,
            "message.html",
            lang=request_lang(request),
            status_code=400,
            title_key="no_session_title",
            body_key="no_session_body",
            lang_toggle=LOGIN_PATH,
        )
    lang = theme.request_language(request, journey.lang)
    form: dict[str, str] = {}
    if post:
        try:
            form = await read_form(request)
        except HTTPException:  # over the field limit, or a malformed multipart body
            return bad_form_page(theme, lang, LOGIN_PATH)
        if not same_secret(form.get("csrf_token", ""), journey.csrf_token):
            return bad_form_page(theme, lang, LOGIN_PATH)
    visit = Visit(request, services, now, journey, form, lang, client)
    settings = services.settings
    if journey.finished:
        return ended_page(visit)
    if journey.expired(
        now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
    ):
        return await show(services, time_out, visit)
    if journey.stage not in stages:
        return redirect(current_screen(journey, request))
    return visit


def current_screen(journey: Journey, request: Request) -> str:
    """The journey's current screen, keeping the language the PSU just chose (a language link
    of an error page leads to the login path, which sends it on to the current screen)."""
    page = STAGE_PAGES[journey.stage]
    chosen = request.query_params.get("lang")
    if chosen is not None and chosen in theme_of(request).texts:
        return f"{page}?{urlencode({'lang': chosen})}"
    return page


def screen(visit: Visit, template: str, *, status_code: int = 200, **context: Any) -> Page:
    """A journey screen: the idle timer restarts (the request is activity) and the page timer
    gets the server-computed seconds left. Blocking (in the step's hop)."""
    with visit.services.engine.begin() as conn:
        touch(conn, visit.journey, visit.now, visit.lang)
    return partial(_screen_page, visit, template, status_code, context)


def _screen_page(
    visit: Visit, template: str, status_code: int, context: dict[str, Any]
) -> Response:
    """``context`` may name its own ``lang_toggle`` (a screen that is not its stage's page,
    such as the connected-apps list inside an authorization)."""
    settings = visit.services.settings
    context = dict(context)
    lang_toggle = context.pop("lang_toggle", None)
    journey = replace(visit.journey, last_activity_at=visit.now, lang=visit.lang)
    left = journey.seconds_left(
        visit.now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
    )
    return render_page(
        visit.theme,
        template,
        lang=visit.lang,
        status_code=status_code,
        form_origin=redirect_origin(journey.request.redirect_uri) if visit.authorize else None,
        csrf_token=journey.csrf_token,
        deadline_seconds=left,
        # The idle warning: a minute before the end (half the limit if that is shorter).
        warn_seconds=min(WARN_SECONDS, settings.psu_idle_timeout_seconds // 2),
        lang_toggle=lang_toggle or STAGE_PAGES.get(journey.stage, visit.request.url.path),
        authorize=visit.authorize,
        client_name=visit.client_name,
        **context,
    )


def screen_then_redirect(visit: Visit, url: str) -> Page:
    """A PSU action answered with a 303 (post/redirect/get): activity, like a screen (the
    idle timer restarts). Blocking (in the step's hop)."""
    with visit.services.engine.begin() as conn:
        touch(conn, visit.journey, visit.now, visit.lang)
    return partial(redirect, url)


def keep_alive(visit: Visit) -> Page:
    """The "continue the session" button from the page script: activity (the idle timer
    restarts), answered with the seconds now left. Blocking (in the step's hop)."""
    with visit.services.engine.begin() as conn:
        touch(conn, visit.journey, visit.now, visit.lang)
    settings = visit.services.settings
    journey = replace(visit.journey, last_activity_at=visit.now)
    left = journey.seconds_left(
        visit.now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
    )
    return partial(JSONResponse, {"seconds": left}, headers=dict(PAGE_HEADERS))


def callback_error(visit: Visit, description: str, error: str = "access_denied") -> str:
    journey = visit.journey
    return error_redirect(
        journey.request.redirect_uri,
        error=error,
        description=description,
        state=journey.request.state,
        issuer=visit.services.issuer,
    )


def ended_page(visit: Visit) -> Response:
    """What a finished journey shows when the browser comes back to it."""
    journey = visit.journey
    if journey.outcome == OUTCOME_AUTHENTICATION_FAILED:
        return blocked_page(visit, visit.services.settings.psu_block_seconds)
    if not visit.authorize:
        key = "expired" if journey.outcome == OUTCOME_TIMEOUT else "signed_out"
        return message_page(visit, f"{key}_title", f"{key}_body", sign_in=True)
    if journey.outcome == OUTCOME_TIMEOUT:
        return expired_page(visit)
    return message_page(visit, "ended_title", "ended_body")


def message_page(
    visit: Visit,
    title_key: str,
    body_key: str,
    *,
    status_code: int = 200,
    sign_in: bool = False,
    return_url: str | None = None,
) -> Response:
    return render_page(
        visit.theme,
        "message.html",
        lang=visit.lang,
        status_code=status_code,
        title_key=title_key,
        body_key=body_key,
        sign_in_url=APPS_PATH if sign_in else None,
        return_url=return_url,
        client_name=visit.client_name,
        lang_toggle=LOGIN_PATH,
    )


def blocked_page(visit: Visit, seconds: float) -> Response:
    return_url = callback_error(visit, AUTHENTICATION_FAILED) if visit.authorize else None
    return render_page(
        visit.theme,
        "blocked.html",
        lang=visit.lang,
        minutes=max(1, math.ceil(seconds / 60)),
        return_url=return_url,
        sign_in_url=None if visit.authorize else APPS_PATH,
        client_name=visit.client_name,
        lang_toggle=LOGIN_PATH,
    )


def time_out(visit: Visit) -> Page:
    """End the journey with ``timeout``. Blocking (in the step's hop)."""
    with visit.services.engine.begin() as conn:
        if finish(conn, visit.journey, OUTCOME_TIMEOUT, visit.now):
            record_event(
                conn,
                visit.now,
                **visit.audit(AUTHORIZATION_TIMED_OUT if visit.authorize else SESSION_TIMED_OUT),
            )
    return partial(_timed_out_page, visit)


def _timed_out_page(visit: Visit) -> Response:
    """The bank's own "session expired" page (WCAG 2.2.1: the PSU learns why, from the bank,
    before anything else happens): for a TPP journey it links back to the TPP with
    ``access_denied``/``timeout`` — the same callback as before, one click later."""
    if visit.authorize:
        return expired_page(visit)
    response = message_page(visit, "expired_title", "expired_body", sign_in=True)
    session_cookie(visit.services).clear(response)
    return response


def expired_page(visit: Visit) -> Response:
    return render_page(
        visit.theme,
        "expired.html",
        lang=visit.lang,
        return_url=callback_error(visit, TIMEOUT),
        client_name=visit.client_name,
        lang_toggle=LOGIN_PATH,
    )


def end_authentication_failed(visit: Visit, *, reason: str, blocked_seconds: float) -> Page:
    """Too many failures (or a blocked PSU): the journey ends, the page says the access is
    blocked — never which element was wrong — and links back to the TPP with
    ``access_denied``/``authentication_failed``. Blocking (in the step's hop)."""
    with visit.services.engine.begin() as conn:
        if finish(conn, visit.journey, OUTCOME_AUTHENTICATION_FAILED, visit.now):
            record_event(
                conn,
                visit.now,
                **visit.audit(
                    AUTHORIZATION_FAILED if visit.authorize else SESSION_FAILED, reason=reason
                ),
            )
    return partial(blocked_page, visit, blocked_seconds)


def failed_attempt(
    visit: Visit, *, template: str, error_key: str, psu: Psu | None, reason: str, **context: Any
) -> Page:
    """Count one failure in the journey (the PSU's own count is the directory's); at the
    limit the journey ends, otherwise the same screen comes back with a generic message.
    Blocking (in the step's hop)."""
    settings = visit.services.settings
    with visit.services.engine.begin() as conn:
        count = count_failure(conn, visit.journey, visit.now)
        record_event(
            conn,
            visit.now,
            **visit.audit(
                audit_events.AUTHENTICATION_FAILED,
                psu_id=psu.psu_id if psu else None,
                reason=reason,
                detail={"journey_failures": count},
            ),
        )
    if count >= settings.max_failed_auth_attempts:
        return end_authentication_failed(
            visit, reason="too_many_failures", blocked_seconds=settings.psu_block_seconds
        )
    # One attempt left: the page says so before it happens (the block is no surprise).
    last = count == settings.max_failed_auth_attempts - 1
    minutes = max(1, math.ceil(settings.psu_block_seconds / 60)) if last else None
    return screen(visit, template, error_key=error_key, last_attempt_minutes=minutes, **context)


def with_session(page: Page, visit: Visit, session_id: str | None) -> Page:
    """``page``, carrying the cookie of the journey's new session id when it was renewed
    (`stetgate.psu.journeys.advance_renewing_session`)."""
    if session_id is None:
        return page

    def renewed() -> Response:
        response = page()
        session_cookie(visit.services).attach(response, session_id)
        return response

    return renewed


def sign_out(visit: Visit) -> Page:
    """End the journey as signed out. Blocking (in the step's hop)."""
    with visit.services.engine.begin() as conn:
        if finish(conn, visit.journey, OUTCOME_SIGNED_OUT, visit.now):
            record_event(conn, visit.now, **visit.audit(SESSION_SIGNED_OUT))
    return partial(_signed_out_page, visit)


def _signed_out_page(visit: Visit) -> Response:
    response = message_page(visit, "signed_out_title", "signed_out_body", sign_in=True)
    session_cookie(visit.services).clear(response)
    return response
