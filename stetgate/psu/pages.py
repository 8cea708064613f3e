"""The PSU's pages: identification → SCA method → SCA → consent → back to the TPP (step 3 of
docs/decisions.md#the-cinematic; STET v1.4.2 Part I §3.4 "redirect" approach). The rules shared
by every screen (session, CSRF, timeouts, stage order) are in `stetgate.psu.visits`.

Form field names are part of the interface (TPPs automate the sandbox with them):
``psu_id``, ``password``; ``method`` (``totp`` | ``app``); ``otp``; ``decision``
(``authorize`` | ``refuse``); ``csrf_token`` on every form.

Outcomes (docs/decisions.md#callback-outcomes): consent → ``code``; refusal →
``access_denied``/``consent_refused``; "Cancel" on any screen → ``access_denied``/``cancelled``;
too many failures (identification or SCA, or a rejection in the banking app) →
``access_denied``/``authentication_failed``; timeout (or a challenge the bank's SCA service let
expire) → ``access_denied``/``timeout``; a TPP whose certificates or status stopped being valid
during the journey → the same error as at /authorize. Each ending writes one audit event.

Threading (`stetgate.serving.blocking`): a page request makes one hop off the event loop to
read its journey (`open_visit`) and one for its step — the directory and SCA-method calls,
the TPP re-check and the journey's transactions, in the order and transactions they always
had — then renders on the loop; the login form adds the password check, on its own limited
threads. A journey or the bank's systems waiting never stalls the worker's other requests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from stetgate.bank.backend import Account
from stetgate.bank.failures import BankFailure
from stetgate.bank.psus import Psu
from stetgate.bank.sca import (
    CHALLENGE_PENDING,
    ChallengeContext,
    DecoupledScaMethod,
    ScaCheck,
    ScaMethod,
    ScaServiceUnavailable,
)
from stetgate.oauth.callback import (
    AUTHENTICATION_FAILED,
    CONSENT_REFUSED,
    PSU_CANCELLED,
    success_redirect,
)
from stetgate.oauth.codes import complete_authorization
from stetgate.oauth.errors import OAuthError
from stetgate.oauth.scopes import AISP, CBPII, EXTENDED_HISTORY
from stetgate.psu.authentication import Identification, Verdict, identify
from stetgate.psu.authorize_frontend import INVALID_REQUEST_PATH, invalid_request_page
from stetgate.psu.connected_apps import connected_apps_page, connected_apps_revoke
from stetgate.psu.journeys import (
    OUTCOME_CLIENT_REJECTED,
    OUTCOME_CONSENT_REFUSED,
    OUTCOME_GRANTED,
    OUTCOME_SCA_REJECTED,
    OUTCOME_SCA_UNAVAILABLE,
    STAGE_APPS,
    STAGE_CONSENT,
    STAGE_IDENTIFY,
    STAGE_METHOD,
    STAGE_SCA,
    Journey,
    advance,
    advance_renewing_session,
    finish,
    format_challenge_id,
    load_journey,
    new_challenge_id,
)
from stetgate.psu.rendering import Page, redirect, show
from stetgate.psu.sca import enrolled_methods, method_named
from stetgate.psu.theme_assets import routes as theme_asset_routes
from stetgate.psu.visits import (
    APPS_PATH,
    APPS_REVOKE_PATH,
    CANCEL_PATH,
    CONSENT_PATH,
    CONTINUE_PATH,
    LIVE_STAGES,
    LOGIN_PATH,
    METHOD_PATH,
    SCA_PATH,
    SIGN_OUT_PATH,
    STAGE_PAGES,
    STATIC_PATH,
    STATUS_PATH,
    TIMEOUT_PATH,
    Visit,
    callback_error,
    end_authentication_failed,
    ended_page,
    failed_attempt,
    keep_alive,
    message_page,
    open_visit,
    screen,
    screen_then_redirect,
    sign_out,
    time_out,
    with_session,
)
from stetgate.psu.wiring import session_cookie
from stetgate.services import services_of
from stetgate.store import audit_events
from stetgate.store.audit import record_event
from stetgate.store.audit_events import (
    AUTHORIZATION_FAILED,
    AUTHORIZATION_GRANTED,
    AUTHORIZATION_REFUSED,
    PSU_AUTHENTICATED,
    PSU_BLOCKED,
    SESSION_FAILED,
)


# --- identification -------------------------------------------------------------------------
async def login_page(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_IDENTIFY}), post=False)
    if isinstance(visit, Response):
        return visit
    return await show(visit.services, screen, visit, "login.html", error_key=None, psu_id="")


async def login_submit(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_IDENTIFY}), post=True)
    if isinstance(visit, Response):
        return visit
    directory = visit.services.psus
    psu_id = visit.form.get("psu_id", "").strip()
    password = visit.form.get("password", "")
    # argon2 takes tens of milliseconds of CPU and ~19 MiB: off the event loop (it releases
    # the GIL), on the worker's `password_check_concurrency` password threads so a burst of
    # logins cannot push its memory past the budget (`Services.password_checks`). Its own hop:
    # the journey's writes that follow do not hold a password thread.
    result = await visit.services.password_checks.run(
        identify, directory, psu_id, password, visit.now
    )
    return await show(visit.services, _identified, visit, result)


def _identified(visit: Visit, result: Identification) -> Page:
    """What an identification leads to: the failure count, the block, or the SCA. After a
    failure the identifier the PSU typed stays in the form (WCAG 3.3.7: not asked to type it
    again); it says nothing about whether it exists."""
    if result.verdict is Verdict.FAILED:
        return failed_attempt(
            visit,
            template="login.html",
            error_key="login_failed",
            psu=result.psu,
            reason="identification",
            psu_id=visit.form.get("psu_id", "").strip()[:64],
        )
    assert result.psu is not None
    psu = result.psu
    if result.verdict is Verdict.BLOCKED:
        assert result.blocked_until is not None
        if result.just_blocked:
            with visit.services.engine.begin() as conn:
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(
                        PSU_BLOCKED,
                        psu_id=psu.psu_id,
                        reason="identification",
                        detail={"until": result.blocked_until.isoformat()},
                    ),
                )
        return end_authentication_failed(
            visit,
            reason=PSU_BLOCKED,
            blocked_seconds=(result.blocked_until - visit.now).total_seconds(),
        )
    methods = enrolled_methods(visit.services.sca_methods, psu)
    if not methods:
        return _no_sca_method(visit, psu.psu_id)
    if len(methods) == 1:
        return _start_sca(visit, methods[0], renew=True, psu_id=psu.psu_id)
    with visit.services.engine.begin() as conn:
        session_id = advance_renewing_session(
            conn, visit.journey, to_stage=STAGE_METHOD, now=visit.now, psu_id=psu.psu_id
        )
    return with_session(partial(redirect, METHOD_PATH), visit, session_id)


def _start_sca(visit: Visit, method: ScaMethod, *, renew: bool = False, **columns: Any) -> Page:
    """Move the journey to ``method``'s SCA page; the method's ``begin`` sets its own journey
    columns (a decoupled challenge reference, say). A method backed by the bank's SCA service
    (`DecoupledScaMethod`) creates its challenge first, outside any transaction: if the service
    does not answer, `ScaServiceUnavailable` leaves the journey where it was (503 page)."""
    if isinstance(method, DecoupledScaMethod):
        started = method.start(_challenge_context(visit))
    else:
        started = method.begin()
    move = advance_renewing_session if renew else advance
    with visit.services.engine.begin() as conn:
        moved = move(
            conn,
            visit.journey,
            to_stage=STAGE_SCA,
            now=visit.now,
            sca_method=method.name,
            **columns,
            **started,
        )
    # ``renew``: right after identification, an authentication step.
    session_id = moved if isinstance(moved, str) else None
    return with_session(partial(redirect, SCA_PATH), visit, session_id)


def _challenge_context(visit: Visit) -> ChallengeContext:
    """Who asks what, for the PSU's device; the challenge expires with the journey (the
    deadline once this request restarts the idle timer)."""
    settings = visit.services.settings
    journey = visit.journey
    expires_at = min(
        visit.now + timedelta(seconds=settings.psu_idle_timeout_seconds),
        journey.started_at + timedelta(seconds=settings.psu_journey_timeout_seconds),
    )
    access = None
    if visit.authorize:
        access = CBPII if CBPII in journey.request.scope.split() else AISP
    return ChallengeContext(
        psu_id=journey.psu_id or "",
        reference=new_challenge_id(),
        client_name=visit.client_name if visit.authorize else None,
        access=access,
        expires_at=expires_at,
        request_id=visit.request_id,
    )


def _no_sca_method(visit: Visit, psu_id: str | None) -> Page:
    """No SCA method the bank offers is enrolled for the PSU: authentication cannot complete
    (``authentication_failed``), and the page says to contact the bank."""
    with visit.services.engine.begin() as conn:
        if finish(conn, visit.journey, OUTCOME_SCA_UNAVAILABLE, visit.now):
            record_event(
                conn,
                visit.now,
                **visit.audit(
                    AUTHORIZATION_FAILED if visit.authorize else SESSION_FAILED,
                    psu_id=psu_id,
                    reason="no_sca_method",
                ),
            )

    def page() -> Response:
        return_url = callback_error(visit, AUTHENTICATION_FAILED) if visit.authorize else None
        return message_page(visit, "method_title", "no_method_body", return_url=return_url)

    return page


# --- choosing the SCA method ------------------------------------------------------------
def _enrolled(visit: Visit) -> tuple[Psu | None, list[ScaMethod]]:
    psu = visit.services.psus.find(visit.journey.psu_id or "")
    if psu is None:
        return None, []
    return psu, enrolled_methods(visit.services.sca_methods, psu)


async def method_page(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_METHOD}), post=False)
    if isinstance(visit, Response):
        return visit

    def step() -> Page:
        _, methods = _enrolled(visit)
        return screen(visit, "method.html", methods=[m.name for m in methods], error_key=None)

    return await show(visit.services, step)


async def method_submit(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_METHOD}), post=True)
    if isinstance(visit, Response):
        return visit

    def step() -> Page:
        psu, methods = _enrolled(visit)
        if psu is None or psu.blocked_at(visit.now):
            return end_authentication_failed(
                visit, reason=PSU_BLOCKED, blocked_seconds=_block_left(visit, psu)
            )
        chosen = method_named(methods, visit.form.get("method"))
        if chosen is None:
            return screen(
                visit,
                "method.html",
                status_code=400,
                methods=[m.name for m in methods],
                error_key="method_intro",
            )
        return _start_sca(visit, chosen)

    return await show(visit.services, step)


def _block_left(visit: Visit, psu: Psu | None) -> float:
    if psu is not None and psu.blocked_until is not None and psu.blocked_until > visit.now:
        return (psu.blocked_until - visit.now).total_seconds()
    return visit.services.settings.psu_block_seconds


# --- the SCA factor -------------------------------------------------------------------------
def _sca_page(
    visit: Visit, method: ScaMethod, *, error_key: str | None = None, status_code: int = 200
) -> Page:
    challenge = visit.journey.app_challenge_id
    return screen(
        visit,
        method.template,
        status_code=status_code,
        error_key=error_key,
        reference=format_challenge_id(challenge) if challenge else None,
    )


async def sca_page(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_SCA}), post=False)
    if isinstance(visit, Response):
        return visit

    def step() -> Page:
        method = method_named(visit.services.sca_methods, visit.journey.sca_method)
        if method is None:
            return _no_sca_method(visit, visit.journey.psu_id)
        return _sca_page(visit, method)

    return await show(visit.services, step)


async def sca_submit(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_SCA}), post=True)
    if isinstance(visit, Response):
        return visit
    return await show(visit.services, _check_sca, visit)


def _check_sca(visit: Visit) -> Page:
    """The PSU's answer on the SCA page, checked by its method (the directory, the bank's
    systems), and what follows from it."""
    services = visit.services
    directory = services.psus
    psu = directory.find(visit.journey.psu_id or "")
    method = method_named(services.sca_methods, visit.journey.sca_method)
    if psu is None or method is None or psu.blocked_at(visit.now):
        return end_authentication_failed(
            visit, reason=PSU_BLOCKED, blocked_seconds=_block_left(visit, psu)
        )
    check = method.check(directory, visit.journey, visit.form, visit.now)
    if check is ScaCheck.PENDING:
        return _sca_page(visit, method, error_key="app_not_yet")
    if check is ScaCheck.EXPIRED:
        return time_out(visit)
    if check is ScaCheck.REJECTED:
        with services.engine.begin() as conn:
            if finish(conn, visit.journey, OUTCOME_SCA_REJECTED, visit.now):
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(
                        AUTHORIZATION_FAILED if visit.authorize else SESSION_FAILED,
                        reason="app_rejected",
                    ),
                )
        if visit.authorize:
            return lambda: redirect(callback_error(visit, AUTHENTICATION_FAILED))
        return partial(message_page, visit, "signed_out_title", "signed_out_body", sign_in=True)
    if check is ScaCheck.FAILED or check is ScaCheck.REUSED:
        attempt = directory.record_failed_attempt(psu.psu_id, visit.now)
        if attempt.blocked_until is not None:
            with services.engine.begin() as conn:
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(audit_events.AUTHENTICATION_FAILED, reason=f"sca_{method.name}"),
                )
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(
                        PSU_BLOCKED,
                        reason=f"sca_{method.name}",
                        detail={"until": attempt.blocked_until.isoformat()},
                    ),
                )
            return end_authentication_failed(
                visit,
                reason=PSU_BLOCKED,
                blocked_seconds=(attempt.blocked_until - visit.now).total_seconds(),
            )
        return failed_attempt(
            visit,
            template=method.template,
            error_key=_sca_error_key(method, check),
            psu=psu,
            reason=f"sca_{method.name}_reused"
            if check is ScaCheck.REUSED
            else f"sca_{method.name}",
            reference=None,
        )
    directory.record_successful_authentication(psu.psu_id)
    next_stage = STAGE_CONSENT if visit.authorize else STAGE_APPS
    with services.engine.begin() as conn:
        session_id = advance_renewing_session(
            conn, visit.journey, to_stage=next_stage, now=visit.now, sca_completed_at=visit.now
        )
        if session_id is not None:
            record_event(
                conn, visit.now, **visit.audit(PSU_AUTHENTICATED, reason=f"sca_{method.name}")
            )
    return with_session(partial(redirect, STAGE_PAGES[next_stage]), visit, session_id)


def _sca_error_key(method: ScaMethod, check: ScaCheck) -> str:
    """The message after a refused factor. A reused one-time code counts as a failure like a
    wrong one (RTS (EU) 2018/389 Art. 4(3)(b)) but says what to do — wait for the next code —
    since retyping the same one can only fail again (why this is no oracle:
    `stetgate.bank.psus.TotpCheck`)."""
    if check is ScaCheck.REUSED:
        return "otp_reused"
    return "otp_failed" if method.name == "totp" else "sca_failed"


def _journey_of(engine: Engine, session_id: str) -> Journey | None:
    with engine.begin() as conn:
        return load_journey(conn, session_id)


async def sca_status(request: Request) -> Response:
    """Decoupled SCA status for the waiting page's poll (JSON; read-only, so no CSRF token;
    the poll is not PSU activity and does not restart the idle timer)."""
    services = services_of(request)
    now = services.clock.now()
    session_id = session_cookie(services).session_id(request)
    journey = None
    if session_id is not None:
        journey = await services.blocking.run(_journey_of, services.engine, session_id)
    headers = {"Cache-Control": "no-store"}
    if journey is None:
        return JSONResponse({"status": "unknown"}, status_code=404, headers=headers)
    settings = services.settings
    if journey.finished:
        status = "ended"
    elif journey.expired(
        now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
    ):
        status = "expired"
    elif journey.stage != STAGE_SCA:
        status = "moved"
    else:
        status = journey.app_challenge_status or "pending"
        method = method_named(services.sca_methods, journey.sca_method)
        if status == CHALLENGE_PENDING and isinstance(method, DecoupledScaMethod):
            status = await services.blocking.run(_refreshed, method, journey, now) or status
    return JSONResponse({"status": status}, headers=headers)


def _refreshed(method: DecoupledScaMethod, journey: Journey, now: datetime) -> str | None:
    """The bank's SCA service's latest state (poll mode); a service that does not answer
    leaves the page waiting — the poll asks again, the PSU's own submit gets the 503 page."""
    try:
        return method.refresh(journey, now)
    except ScaServiceUnavailable:
        return None


# --- consent ------------------------------------------------------------------------------
def _consent_context(visit: Visit) -> dict[str, Any]:
    """What the consent page states (EBA Guidelines on ICT and security risk management; the
    PSU must know who gets what): the TPP, its role, the access, its duration, the accounts
    and cards concerned and who is signed in. The account list and the PSU's name come from
    the bank's ports (blocking: in the step's hop); a backend failure leaves the generic
    "all your online accounts" wording rather than blocking the consent."""
    scopes = set(visit.journey.request.scope.split())
    role = CBPII if CBPII in scopes else AISP
    if role == CBPII:
        access_key = "access_cbpii"
    else:
        access_key = "access_aisp_extended" if EXTENDED_HISTORY in scopes else "access_aisp"
    psu_id = visit.journey.psu_id or ""
    psu = visit.services.psus.find(psu_id)
    try:
        accounts = [_account_label(a) for a in visit.services.bank.accounts_of(psu_id)]
    except BankFailure:
        accounts = []
    return dict(
        role_key=f"role_{role}",
        access_key=access_key,
        days=visit.services.settings.sca_validity_days,
        organization=visit.certified_organization,
        organization_id=visit.client.org_id if visit.client is not None else None,
        signed_in=psu.display_name if psu is not None else None,
        accounts=accounts,
    )


def _account_label(account: Account) -> str:
    """An account as its holder knows it: its name and the end of its IBAN or card number
    (never the whole number on a page)."""
    number = account.iban or (account.other.identification if account.other else "")
    tail = number.replace(" ", "")[-4:]
    return f"{account.name} (…{tail})" if tail else account.name


def _consent_screen(visit: Visit, status_code: int = 200) -> Page:
    return screen(visit, "consent.html", status_code=status_code, **_consent_context(visit))


async def consent_page(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_CONSENT}), post=False)
    if isinstance(visit, Response):
        return visit
    return await show(visit.services, _consent_screen, visit)


async def consent_submit(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_CONSENT}), post=True)
    if isinstance(visit, Response):
        return visit

    def step() -> Page:
        decision = visit.form.get("decision")
        if decision == "refuse":
            return _refuse(visit, reason="consent_refused")
        if decision != "authorize":
            return _consent_screen(visit, status_code=400)
        return _grant(visit)

    return await show(visit.services, step)


def _refuse(visit: Visit, *, reason: str) -> Page:
    """The PSU said no: refused consent, or "Cancel". The journey ends as refused either way
    (no code); the callback tells them apart, since a TPP treats an interruption (the PSU may
    try again) differently from a refusal (docs/decisions.md#callback-outcomes)."""
    with visit.services.engine.begin() as conn:
        if finish(conn, visit.journey, OUTCOME_CONSENT_REFUSED, visit.now):
            record_event(conn, visit.now, **visit.audit(AUTHORIZATION_REFUSED, reason=reason))
    description = PSU_CANCELLED if reason == "cancelled" else CONSENT_REFUSED
    return lambda: redirect(callback_error(visit, description))


def _grant(visit: Visit) -> Page:
    """The PSU authorized: re-check the TPP (it may have been suspended or its certificate
    revoked during the journey), then end the journey and issue the code in one transaction."""
    services = visit.services
    journey = visit.journey
    client = visit.client
    if client is None:
        with services.engine.begin() as conn:
            finish(conn, journey, OUTCOME_CLIENT_REJECTED, visit.now)
            record_event(
                conn, visit.now, **visit.audit(AUTHORIZATION_FAILED, reason="client_removed")
            )
        return partial(message_page, visit, "ended_title", "ended_body", status_code=400)
    assert journey.psu_id is not None and journey.sca_completed_at is not None
    try:
        code = complete_authorization(
            services,
            client,
            journey.request,
            psu_id=journey.psu_id,
            sca_at=journey.sca_completed_at,
            now=visit.now,
            end_journey=lambda conn: _end_granted(conn, visit),
        )
    except OAuthError as exc:
        with services.engine.begin() as conn:
            if finish(conn, journey, OUTCOME_CLIENT_REJECTED, visit.now):
                record_event(
                    conn,
                    visit.now,
                    **visit.audit(AUTHORIZATION_FAILED, reason=f"{exc.error}: {exc.description}"),
                )
        error = exc
        return lambda: redirect(callback_error(visit, error.description, error.error))
    if code is None:
        return partial(ended_page, visit)
    issued = code
    return lambda: redirect(
        success_redirect(
            journey.request.redirect_uri,
            code=issued,
            state=journey.request.state,
            issuer=services.issuer,
        )
    )


def _end_granted(conn: Connection, visit: Visit) -> bool:
    """Close the journey as granted and audit it, in the code's transaction."""
    if not finish(conn, visit.journey, OUTCOME_GRANTED, visit.now):
        return False
    record_event(
        conn,
        visit.now,
        **visit.audit(AUTHORIZATION_GRANTED, detail={"scope": visit.journey.request.scope}),
    )
    return True


# --- leaving early ------------------------------------------------------------------------
async def cancel_submit(request: Request) -> Response:
    """The PSU's "Cancel" on any screen: for a TPP journey, ``access_denied``/``cancelled``."""
    visit = await open_visit(request, LIVE_STAGES, post=True)
    if isinstance(visit, Response):
        return visit
    if visit.authorize:
        return await show(visit.services, _refuse, visit, reason="cancelled")
    return await show(visit.services, sign_out, visit)


async def timeout_submit(request: Request) -> Response:
    """Where the page timer goes when its countdown ends (a hidden form with the CSRF token):
    the journey ends with ``timeout`` even if the server clock has not quite got there, since
    the page the PSU sees has expired."""
    visit = await open_visit(request, LIVE_STAGES, post=True)
    if isinstance(visit, Response):
        return visit
    return await show(visit.services, time_out, visit)


async def continue_submit(request: Request) -> Response:
    """ "Continue the session" (WCAG 2.2.1): a PSU action, so the idle timer restarts (RTS
    (EU) 2018/389 Art. 4(3)(d) counts inactivity, not the journey's length). The page script
    gets the seconds now left as JSON; without script, a 303 back to the current screen."""
    visit = await open_visit(request, LIVE_STAGES, post=True)
    if isinstance(visit, Response):
        return visit
    if visit.form.get("js") == "1":
        return await show(visit.services, keep_alive, visit)
    page = STAGE_PAGES[visit.journey.stage]
    return await show(visit.services, screen_then_redirect, visit, page)


async def sign_out_submit(request: Request) -> Response:
    visit = await open_visit(request, LIVE_STAGES, post=True)
    if isinstance(visit, Response):
        return visit
    return await show(visit.services, sign_out, visit)


def _static_dir() -> Path:
    return Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    return [
        Route(LOGIN_PATH, login_page, methods=["GET"]),
        Route(LOGIN_PATH, login_submit, methods=["POST"]),
        Route(METHOD_PATH, method_page, methods=["GET"]),
        Route(METHOD_PATH, method_submit, methods=["POST"]),
        Route(SCA_PATH, sca_page, methods=["GET"]),
        Route(SCA_PATH, sca_submit, methods=["POST"]),
        Route(STATUS_PATH, sca_status, methods=["GET"]),
        Route(CONSENT_PATH, consent_page, methods=["GET"]),
        Route(CONSENT_PATH, consent_submit, methods=["POST"]),
        Route(CANCEL_PATH, cancel_submit, methods=["POST"]),
        Route(TIMEOUT_PATH, timeout_submit, methods=["POST"]),
        Route(SIGN_OUT_PATH, sign_out_submit, methods=["POST"]),
        Route(CONTINUE_PATH, continue_submit, methods=["POST"]),
        Route(APPS_PATH, connected_apps_page, methods=["GET"]),
        Route(APPS_REVOKE_PATH, connected_apps_revoke, methods=["POST"]),
        Route(INVALID_REQUEST_PATH, invalid_request_page, methods=["GET"]),
        *theme_asset_routes(),  # under STATIC_PATH: before the mount
        Mount(STATIC_PATH, app=StaticFiles(directory=_static_dir()), name="psu-static"),
    ]
