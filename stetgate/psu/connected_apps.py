"""The PSU's "connected apps" page: after identification and SCA (the same screens as an
authorization), the PSU sees each TPP holding a valid authorization — name, role, granted on,
expires on, last used — and can withdraw it, which revokes the token pair at once (STET v1.4.2
Part I §3.4.3.5 via BPCE: the ASPSP revokes "when the PSU withdraws the TPP's access in the
ASPSP channel"). Pairs come from `stetgate.oauth.token_pairs`; a PSU can only ever see and revoke
its own.

Withdrawing takes two steps, both forms (no script needed): the list's button asks for a
confirmation page naming the TPP; its confirmed form revokes and answers 303 to the list with
``?withdrawn=<grant id>`` (post/redirect/get: reloading the page never re-posts, and the
browser is not left on the form's URL). The list shows the notice only for a grant of this
PSU that is revoked, so the parameter cannot make the page say anything else.

Reached from the consent page (its "Connected apps" link, same tab): a browser whose live
authorization journey is at the consent step — the PSU identified and passed SCA in it — sees
its list *inside that journey* (same session, CSRF token and time limits; no second sign-in,
no new cookie), can withdraw there too, and has a link back to the consent page instead of
"sign out". The journey is not superseded, so the TPP's authorization goes on where it was
(docs/decisions.md#connected-apps-from-the-consent-page). A journey at any earlier step is
replaced by a sign-in, as before: the PSU has not proven who it is in it.

Each request reads and writes in one hop off the event loop (`stetgate.serving.blocking`):
the journey lookup and, when there is no live sign-in, its replacement; then the grant list
with the revocation, if any, and the screen's idle-timer update.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from stetgate.oauth.clients import Client, get_client
from stetgate.oauth.token_pairs import (
    REVOKED_BY_PSU,
    get_grant,
    list_active_grants_for_psu,
    revoke_grant,
)
from stetgate.psu.journeys import (
    KIND_AUTHORIZE,
    KIND_CONNECTED_APPS,
    OUTCOME_SUPERSEDED,
    STAGE_APPS,
    STAGE_CONSENT,
    Journey,
    finish,
    start_journey,
)
from stetgate.psu.rendering import Page, redirect, show
from stetgate.psu.visits import (
    APPS_PATH,
    CONSENT_PATH,
    LOGIN_PATH,
    Visit,
    enter_visit,
    load_visit,
    open_visit,
    request_lang,
    screen,
    screen_then_redirect,
)
from stetgate.psu.wiring import session_cookie
from stetgate.services import Services, services_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import GRANT_REVOKED_BY_PSU

MAX_GRANT_ID = 64
LIST_STAGES = frozenset({STAGE_APPS, STAGE_CONSENT})
"""Where the list is shown: a connected-apps journey once signed in, or an authorization at
its consent step (`_may_list` keeps the latter to authorization journeys)."""


async def connected_apps_page(request: Request) -> Response:
    """Signed in (stage ``apps``): the list. Otherwise a fresh sign-in journey starts — a
    journey of another kind in this browser is replaced."""
    services = services_of(request)
    now = services.clock.now()
    cookie = session_cookie(services)
    session_id = cookie.session_id(request)
    lang = request_lang(request)
    live, client, new_id = await services.blocking.run(_signed_in, services, session_id, lang, now)
    if live is not None:
        visit = await enter_visit(request, services, now, live, client, LIST_STAGES, post=False)
        if isinstance(visit, Response):
            return visit
        withdrawn = request.query_params.get("withdrawn")
        return await show(services, _apps_page, visit, withdrawn=withdrawn)
    assert new_id is not None
    response = redirect(LOGIN_PATH)
    cookie.attach(response, new_id)
    return response


def _signed_in(
    services: Services, session_id: str | None, lang: str, now: datetime
) -> tuple[Journey | None, Client | None, str | None]:
    """The browser's live journey that may show the list — a connected-apps journey, or an
    authorization at its consent step — with its TPP; or (None, None, the session id of) a new
    connected-apps journey that replaces whatever journey the browser had."""
    current: Journey | None = None
    client: Client | None = None
    if session_id is not None:
        current, client = load_visit(services.engine, session_id)
    settings = services.settings
    # An authorization keeps its own ending: expired, `enter_visit` times it out with the
    # `timeout` callback. An expired connected-apps sign-in is simply replaced.
    if (
        current is not None
        and not current.finished
        and _may_list(current)
        and (
            current.kind == KIND_AUTHORIZE
            or not current.expired(
                now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
            )
        )
    ):
        return current, client, None
    with services.engine.begin() as conn:
        if current is not None:
            finish(conn, current, OUTCOME_SUPERSEDED, now)
        new_id = start_journey(
            conn,
            kind=KIND_CONNECTED_APPS,
            request=None,
            lang=lang,
            now=now,
        )
    return None, None, new_id


def _may_list(journey: Journey) -> bool:
    """A journey whose PSU has passed SCA and may see (and withdraw) its accesses."""
    if journey.kind == KIND_CONNECTED_APPS:
        return True
    return (
        journey.kind == KIND_AUTHORIZE
        and journey.stage == STAGE_CONSENT
        and journey.sca_completed_at is not None
    )


def _apps_page(visit: Visit, *, withdrawn: str | None = None, status_code: int = 200) -> Page:
    """The PSU's active grants on the apps screen, with the notice of a withdrawal the PSU
    just confirmed. Blocking (in the step's hop)."""
    psu_id = visit.journey.psu_id or ""
    notice = None
    with visit.services.engine.begin() as conn:
        if withdrawn and len(withdrawn) <= MAX_GRANT_ID:
            ended = get_grant(conn, withdrawn)
            if ended is not None and ended.psu_id == psu_id and ended.revoked_at is not None:
                notice = _client_name(conn, ended.client_id)
        active = list_active_grants_for_psu(conn, psu_id, visit.now)
        names = {}
        for live in active:
            if live.client_id not in names:
                names[live.client_id] = _client_name(conn, live.client_id)
    apps = [
        dict(
            id=g.id,
            name=names[g.client_id],
            role_key=f"role_{g.role}",
            granted=g.sca_at,
            expires=g.refresh_expires_at,
            last_used=g.last_used_at,
        )
        for g in active
    ]
    return screen(
        visit,
        "apps.html",
        status_code=status_code,
        apps=apps,
        notice=notice,
        back_url=CONSENT_PATH if visit.authorize else None,
        lang_toggle=APPS_PATH,
    )


async def connected_apps_revoke(request: Request) -> Response:
    visit = await open_visit(request, LIST_STAGES, post=True)
    if isinstance(visit, Response):
        return visit
    return await show(visit.services, _revoke, visit)


def _client_name(conn: Connection, client_id: str) -> str:
    client = get_client(conn, client_id)
    return client.name if client else client_id


def _revoke(visit: Visit) -> Page:
    """The list's button: the confirmation page for a live grant of the PSU's. The confirmed
    form: withdraw it, then back to the list (303). Anything else: the list, 400."""
    grant_id = visit.form.get("grant_id", "")
    psu_id = visit.journey.psu_id or ""
    if visit.form.get("confirm") != "yes":
        with visit.services.engine.begin() as conn:
            grant = get_grant(conn, grant_id) if len(grant_id) <= MAX_GRANT_ID else None
            live = (
                grant is not None
                and grant.psu_id == psu_id
                and grant.revoked_at is None
                and grant.refresh_expires_at > visit.now
            )
            name = _client_name(conn, grant.client_id) if live and grant is not None else ""
        if not live:
            return _apps_page(visit, status_code=400)
        return screen(
            visit, "apps_confirm.html", grant_id=grant_id, app_name=name, lang_toggle=APPS_PATH
        )
    with visit.services.engine.begin() as conn:
        grant = get_grant(conn, grant_id) if len(grant_id) <= MAX_GRANT_ID else None
        revoked = (
            grant is not None
            and grant.psu_id == psu_id
            and revoke_grant(conn, grant_id, visit.now, reason=REVOKED_BY_PSU, psu_id=psu_id)
        )
        if revoked and grant is not None:
            record_event(
                conn,
                visit.now,
                event=GRANT_REVOKED_BY_PSU,
                client_id=grant.client_id,
                org_id=grant.org_id,
                psu_id=psu_id,
                request_id=visit.request_id,
                reason=REVOKED_BY_PSU,
                detail={"grant_id": grant.id},
            )
    if not revoked:
        return _apps_page(visit, status_code=400)
    return screen_then_redirect(visit, f"{APPS_PATH}?{urlencode({'withdrawn': grant_id})}")
