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

from stetgate.oauth.clients import get_client
from stetgate.oauth.token_pairs import (
    REVOKED_BY_PSU,
    get_grant,
    list_active_grants_for_psu,
    revoke_grant,
)
from stetgate.psu.journeys import (
    KIND_CONNECTED_APPS,
    OUTCOME_SUPERSEDED,
    STAGE_APPS,
    Journey,
    finish,
    load_journey,
    start_journey,
)
from stetgate.psu.rendering import Page, redirect, show
from stetgate.psu.visits import (
    APPS_PATH,
    LOGIN_PATH,
    Visit,
    enter_visit,
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


async def connected_apps_page(request: Request) -> Response:
    """Signed in (stage ``apps``): the list. Otherwise a fresh sign-in journey starts — a
    journey of another kind in this browser is replaced."""
    services = services_of(request)
    now = services.clock.now()
    cookie = session_cookie(services)
    session_id = cookie.session_id(request)
    lang = request_lang(request)
    live, new_id = await services.blocking.run(_signed_in, services, session_id, lang, now)
    if live is not None:
        visit = await enter_visit(
            request, services, now, live, None, frozenset({STAGE_APPS}), post=False
        )
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
) -> tuple[Journey | None, str | None]:
    """The browser's live connected-apps journey, or (None, the session id of) a new one
    that replaces whatever journey the browser had."""
    current: Journey | None = None
    if session_id is not None:
        with services.engine.begin() as conn:
            current = load_journey(conn, session_id)
    settings = services.settings
    if (
        current is not None
        and current.kind == KIND_CONNECTED_APPS
        and not current.finished
        and not current.expired(
            now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
        )
    ):
        return current, None
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
    return None, new_id


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
    return screen(visit, "apps.html", status_code=status_code, apps=apps, notice=notice)


async def connected_apps_revoke(request: Request) -> Response:
    visit = await open_visit(request, frozenset({STAGE_APPS}), post=True)
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
        return screen(visit, "apps_confirm.html", grant_id=grant_id, app_name=name)
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
