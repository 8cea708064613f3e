"""The PSU pages' side of ``GET /authorize``: `stetgate.oauth.authorize.AuthorizationFrontend`.

The OAuth endpoint validates the TPP's request; this module turns the outcome into what the
PSU's browser sees: a new server-side journey and the identification page for a valid request
(any journey the same browser still had is superseded: one browser, one journey), the error
page when the callback cannot be trusted, or the redirect back to the TPP with an error.

The methods are synchronous, as the `AuthorizationFrontend` port is: ``begin`` stores the
journey, so the endpoint calls them inside its one hop off the event loop
(`stetgate.serving.blocking`), with its own checks.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.oauth.clients import Client
from stetgate.oauth.untrusted_callback import UntrustedCallback
from stetgate.psu.journeys import (
    KIND_AUTHORIZE,
    OUTCOME_SUPERSEDED,
    finish,
    load_journey,
    start_journey,
)
from stetgate.psu.languages import browser_language
from stetgate.psu.rendering import redirect, render_page
from stetgate.psu.theme import theme_of
from stetgate.psu.visits import LOGIN_PATH
from stetgate.psu.wiring import session_cookie
from stetgate.services import services_of
from stetgate.serving.request_id import request_id_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import AUTHORIZATION_STARTED

INVALID_REQUEST_PATH = "/psu/invalid-request"
"""The refusal page again, in the language the PSU picks: its language links lead here with
the refusal's code (``?reason=redirect_uri.not_registered``), not back to ``/authorize`` —
they would repeat the refused request's parameters (an unregistered ``redirect_uri``) in the
page, and each click would write one more refusal to the audit."""


def _language(request: Request, ui_locales: str | None) -> str:
    """The page language: ``lang`` or else the first of ``ui_locales`` (OpenID Connect Core
    §3.1.2.1) when the bank's pages speak it (built-in or theme languages), else the browser's
    ``Accept-Language``, else the bank's default."""
    theme = theme_of(request)
    chosen = request.query_params.get("lang")
    if chosen is not None and chosen in theme.texts:
        return chosen
    first = (ui_locales or "").split(" ")[0][:2]
    return theme.language(first, browser_language(request, theme.texts))


def parameter_code(parameter: str) -> Markup:
    """A parameter's name inside a translated sentence: code, left untranslated (the TPP's
    developer looks for that exact name); escaped like any text."""
    return Markup('<code class="detail" translate="no">{}</code>').format(parameter)


def refusal_page(request: Request, refusal: UntrustedCallback | None, lang: str) -> Response:
    """400 page for a request whose callback cannot be trusted (RFC 6749 §4.1.2.1): what is
    wrong, from the message catalogue (``refusal_<problem>``, the parameter's name as code),
    the way to the bank's help, and the language links. Without a known refusal (a hand-made
    link), the general explanation alone."""
    return render_page(
        theme_of(request),
        "message.html",
        lang=lang,
        status_code=400,
        title_key="bad_request_title",
        body_key="bad_request_body",
        detail_key=f"refusal_{refusal.problem.key}" if refusal else None,
        detail_code=parameter_code(refusal.parameter if refusal else ""),
        lang_toggle=INVALID_REQUEST_PATH
        + (f"?{urlencode({'reason': refusal.code})}" if refusal else ""),
    )


async def invalid_request_page(request: Request) -> Response:
    """``GET /psu/invalid-request``: the refusal page in another language. It changes nothing
    and reads nothing but its query; the reason must be one of the catalogue's."""
    refusal = UntrustedCallback.from_code(request.query_params.get("reason", "")[:64])
    return refusal_page(request, refusal, theme_of(request).request_language(request))


class PsuAuthorizationFrontend:
    def begin(
        self,
        request: Request,
        client: Client,
        auth: AuthorizationRequest,
        *,
        ui_locales: str | None,
        now: datetime,
    ) -> Response:
        services = services_of(request)
        cookie = session_cookie(services)
        previous = cookie.session_id(request)
        with services.engine.begin() as conn:
            if previous is not None:
                old = load_journey(conn, previous)
                if old is not None:
                    finish(conn, old, OUTCOME_SUPERSEDED, now)
            session_id = start_journey(
                conn,
                kind=KIND_AUTHORIZE,
                request=auth,
                lang=_language(request, ui_locales),
                now=now,
            )
            record_event(
                conn,
                now,
                AUTHORIZATION_STARTED,
                client_id=client.client_id,
                org_id=client.org_id,
                request_id=request_id_of(request.headers),
                detail={"scope": auth.scope, "pkce": auth.code_challenge is not None},
            )
        response = redirect(LOGIN_PATH)
        cookie.attach(response, session_id)
        return response

    def refuse(
        self, request: Request, refusal: UntrustedCallback, *, ui_locales: str | None
    ) -> Response:
        return refusal_page(request, refusal, _language(request, ui_locales))

    def send_back(self, location: str) -> Response:
        return redirect(location)
