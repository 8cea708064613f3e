"""The two routes of delegated login: off to the bank's OP, and back from it.

``GET /psu/login`` (in place of the password form, when ``oidc_issuer`` is set) sends the
browser to the OP's authorization endpoint with an authorization request (OIDC Core
§3.1.2.1): ``response_type=code``, ``scope``, ``redirect_uri`` (``/psu/oidc/callback``),
``state`` and ``nonce`` bound to the journey (`stetgate.oidc_login.logins`), the PKCE S256
challenge (RFC 7636 §4.3), ``acr_values`` naming the bank's strong authentication,
``prompt=login`` (a grant to a TPP needs an SCA now, not an earlier OP session — PSD2 RTS
Art. 4), ``ui_locales`` (the journey's language) and ``login_hint`` when the PSU is known.
A ``POST /psu/login`` (the password form) goes the same way: no local password is checked.

``GET /psu/oidc/callback`` (OIDC Core §3.1.2.5–§3.1.2.6) takes the journey rules of
`stetgate.psu.visits` and then:

- an unknown ``state``, a ``state`` of another browser's journey, or one already used (a
  replayed callback) → 400 page and an ``oidc_callback_refused`` event; the journey is
  untouched (the request may be an attacker's, not the PSU's);
- an ended journey shows its end page; an expired one ends with ``timeout`` (the PSU stayed
  idle at the OP) — the usual `enter_visit` rules;
- ``iss`` (RFC 9207 §2.4) different from the OP's issuer, or missing when the OP announces it,
  → refused (mix-up);
- ``error`` (``access_denied``, ``login_required``… §3.1.2.6), a failed token request or an ID
  token refused by `stetgate.oidc_login.id_token` (wrong ``acr``, expired, wrong nonce, bad
  signature…) → the journey ends (``sca_rejected``) and the TPP's callback gets
  ``error=access_denied&error_description=authentication_failed``, as when the PSU rejects
  the SCA in the banking app;
- a valid ID token → the ``psu_authenticated_by_op`` event with the SCA evidence (iss, acr,
  amr, auth_time) and the journey moves to the consent page (connected apps: the apps page),
  exactly as a completed SCA does.

Threading: each handler reads in one hop and acts in one hop (`show`), the OP's HTTP calls
included (httpx sync client with timeouts, `stetgate.oidc_login.provider`).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stetgate.bank.psus import PSU_ID_PATTERN
from stetgate.oauth.callback import AUTHENTICATION_FAILED
from stetgate.oauth.clients import Client, get_client
from stetgate.oidc_login.id_token import Expectations, IdTokenRefused, validate_id_token
from stetgate.oidc_login.logins import PendingLogin, consume_login, find_login, start_login
from stetgate.oidc_login.provider import OpenIdProvider, ProviderError
from stetgate.psu.journeys import (
    KIND_AUTHORIZE,
    OUTCOME_SCA_REJECTED,
    STAGE_APPS,
    STAGE_CONSENT,
    STAGE_IDENTIFY,
    Journey,
    advance_renewing_session,
    finish,
    load_journey,
    touch,
)
from stetgate.psu.rendering import Page, redirect, render_page, show
from stetgate.psu.theme import theme_of
from stetgate.psu.unavailable import unavailable_page
from stetgate.psu.visits import (
    LOGIN_PATH,
    STAGE_PAGES,
    Visit,
    callback_error,
    enter_visit,
    message_page,
    open_visit,
    request_lang,
    with_session,
)
from stetgate.psu.wiring import session_cookie
from stetgate.services import services_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import (
    AUTHORIZATION_FAILED,
    OIDC_CALLBACK_REFUSED,
    PSU_AUTHENTICATED_BY_OP,
    SESSION_FAILED,
)

CALLBACK_PATH = "/psu/oidc/callback"
_ERROR_CODE = re.compile(r"[^A-Za-z0-9_.-]")
OIDC_SCA_METHOD = "oidc"
"""``psu_journeys.sca_method`` of a journey authenticated at the OP."""


def redirect_uri(issuer: str) -> str:
    """The callback URL to register at the OP (exactly, OIDC Core §3.1.2.1)."""
    return issuer.rstrip("/") + CALLBACK_PATH


class OidcLogin:
    """The routes, bound to one OP."""

    def __init__(self, provider: OpenIdProvider) -> None:
        self.provider = provider

    # --- off to the OP --------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        visit = await open_visit(request, frozenset({STAGE_IDENTIFY}), post=False)
        if isinstance(visit, Response):
            return visit
        return await show(visit.services, self._to_provider, visit)

    async def password_form(self, request: Request) -> Response:
        """The local password form is off: whatever it posts, the PSU goes to the OP."""
        return redirect(LOGIN_PATH)

    def _to_provider(self, visit: Visit) -> Page:
        try:
            endpoint = self.provider.discovery().authorization_endpoint
        except ProviderError:
            return partial(unavailable_page, visit.request)
        settings = visit.services.settings
        with visit.services.engine.begin() as conn:
            login = start_login(conn, visit.journey.id_hash, visit.now)
            touch(conn, visit.journey, visit.now, visit.lang)
        params = {
            "response_type": "code",
            "client_id": self.provider.client_id,
            "redirect_uri": redirect_uri(visit.services.issuer),
            "scope": " ".join(settings.oidc_scopes),
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": login.code_challenge,
            "code_challenge_method": "S256",
            "prompt": "login",
            "ui_locales": visit.lang,
        }
        if settings.oidc_acr_values:
            params["acr_values"] = " ".join(settings.oidc_acr_values)
        if visit.journey.psu_id:
            params["login_hint"] = visit.journey.psu_id
        separator = "&" if "?" in endpoint else "?"
        return partial(redirect, f"{endpoint}{separator}{urlencode(params)}")

    # --- back from the OP ------------------------------------------------------------------
    async def callback(self, request: Request) -> Response:
        services = services_of(request)
        now = services.clock.now()
        state = request.query_params.get("state", "")
        session_id = session_cookie(services).session_id(request)
        journey, client, login, refusal = await services.blocking.run(
            _load_callback, services.engine, session_id, state, now
        )
        if refusal is not None or journey is None or login is None:
            return render_page(
                theme_of(request),
                "message.html",
                lang=request_lang(request),
                status_code=400,
                title_key="no_session_title",
                body_key="no_session_body",
                lang_toggle=LOGIN_PATH,
            )
        visit = await enter_visit(
            request, services, now, journey, client, frozenset({STAGE_IDENTIFY}), post=False
        )
        if isinstance(visit, Response):
            return visit
        return await show(services, self._complete, visit, state, login)

    def _complete(self, visit: Visit, state: str, login: PendingLogin) -> Page:
        services = visit.services
        with services.engine.begin() as conn:
            if not consume_login(conn, state, visit.now):
                record_event(
                    conn, visit.now, **visit.audit(OIDC_CALLBACK_REFUSED, reason="replayed")
                )
                return partial(
                    message_page, visit, "no_session_title", "no_session_body", status_code=400
                )
        query = visit.request.query_params
        try:
            discovery = self.provider.discovery()
        except ProviderError as exc:
            return self._failed(visit, f"oidc_provider: {exc}")
        iss = query.get("iss")
        if (iss is not None and iss != self.provider.issuer) or (
            iss is None and discovery.authorization_response_iss_parameter_supported
        ):
            return self._failed(visit, "oidc_iss_mismatch")  # RFC 9207 §2.4
        error = query.get("error")
        if error is not None:
            # The OP's error code (§3.1.2.6) goes into the audit reason; it is the browser's
            # word, so only letters, digits and ``_.-`` of it are kept, 40 at most.
            return self._failed(visit, f"oidc_{_ERROR_CODE.sub('', error)[:40]}")
        code = query.get("code")
        if not code:
            return self._failed(visit, "oidc_no_code")
        settings = services.settings
        try:
            answer = self.provider.exchange_code(
                code,
                redirect_uri=redirect_uri(services.issuer),
                code_verifier=login.code_verifier,
                now=visit.now,
            )
            evidence = validate_id_token(
                answer["id_token"],
                self.provider.keys_for,
                Expectations(
                    issuer=self.provider.issuer,
                    client_id=self.provider.client_id,
                    nonce_hash=login.nonce_hash,
                    accepted_acr=settings.resolved_oidc_accepted_acr,
                    psu_id_claim=settings.oidc_psu_id_claim,
                    leeway_seconds=settings.oidc_leeway_seconds,
                    authenticated_after=visit.journey.started_at,
                ),
                visit.now,
            )
        except ProviderError as exc:
            return self._failed(visit, f"oidc_provider: {exc}")
        except IdTokenRefused as exc:
            return self._failed(visit, f"oidc_id_token: {exc.reason}")
        if PSU_ID_PATTERN.fullmatch(evidence.psu_id) is None:
            return self._failed(visit, "oidc_id_token: psu_id_claim")
        psu = services.psus.find(evidence.psu_id)
        if psu is not None and psu.blocked_at(visit.now):
            return self._failed(visit, "psu_blocked", psu_id=evidence.psu_id)
        next_stage = STAGE_CONSENT if visit.authorize else STAGE_APPS
        with services.engine.begin() as conn:
            session_id = advance_renewing_session(
                conn,
                visit.journey,
                to_stage=next_stage,
                now=visit.now,
                psu_id=evidence.psu_id,
                sca_method=OIDC_SCA_METHOD,
                sca_completed_at=visit.now,
            )
            if session_id is not None:
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(
                        PSU_AUTHENTICATED_BY_OP,
                        psu_id=evidence.psu_id,
                        reason=OIDC_SCA_METHOD,
                        detail=evidence.audit_detail(),
                    ),
                )
        return with_session(partial(redirect, STAGE_PAGES[next_stage]), visit, session_id)

    def _failed(self, visit: Visit, reason: str, *, psu_id: str | None = None) -> Page:
        """Authentication at the OP did not complete: the journey ends, as an SCA rejected in
        the banking app ends it (``access_denied``/``authentication_failed`` to the TPP)."""
        with visit.services.engine.begin() as conn:
            if finish(conn, visit.journey, OUTCOME_SCA_REJECTED, visit.now):
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(
                        AUTHORIZATION_FAILED if visit.authorize else SESSION_FAILED,
                        psu_id=psu_id,
                        reason=reason,
                    ),
                )
        if visit.authorize:
            return lambda: redirect(callback_error(visit, AUTHENTICATION_FAILED))
        return partial(message_page, visit, "signed_out_title", "signed_out_body", sign_in=True)

    def routes(self) -> list[BaseRoute]:
        """Mounted before `stetgate.psu.pages.routes`: these win for ``/psu/login``."""
        return [
            Route(LOGIN_PATH, self.start, methods=["GET"]),
            Route(LOGIN_PATH, self.password_form, methods=["POST"]),
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
        ]


def _load_callback(
    engine: Engine, session_id: str | None, state: str, now: datetime
) -> tuple[Journey | None, Client | None, PendingLogin | None, str | None]:
    """The journey the callback's ``state`` belongs to, if this browser's session is that
    journey and the state was not used yet; else a refusal reason (audited)."""

    with engine.begin() as conn:
        login = find_login(conn, state) if state else None
        journey = load_journey(conn, session_id) if session_id else None
        refusal: str | None = None
        if login is None:
            refusal = "unknown_state"
        elif login.used:
            # Before the session check: a completed login renewed the journey's session id
            # (`advance_renewing_session`), so a replay in the same browser is a replay.
            refusal = "replayed"
        elif journey is None or journey.id_hash != login.journey_id_hash:
            refusal = "other_session"
        if refusal is not None:
            record_event(
                conn,
                now,
                OIDC_CALLBACK_REFUSED,
                psu_id=journey.psu_id if journey else None,
                reason=refusal,
                detail={"journey": journey.id_hash[:16]} if journey else None,
            )
            return None, None, None, refusal
        assert journey is not None
        client = None
        if journey.kind == KIND_AUTHORIZE:
            client = get_client(conn, journey.request.client_id)
        return journey, client, login, None
