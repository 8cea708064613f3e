"""PSU journeys: the server-side state of one browser's walk through the bank's pages.

Two kinds share the identification and SCA screens:

- ``authorize``: started by a TPP's /authorize request; ends with a redirect to its callback.
- ``connected_apps``: the PSU signs in to see and withdraw the accesses it gave.

Stages move forward only, each move is a conditional UPDATE on the expected stage (a double
click or a replayed form cannot act twice), and a journey ends once (``done`` + ``outcome``):

    identify → [method] → sca → consent (authorize) | apps (connected_apps) → done

Time limits (docs/decisions.md#lifetimes): `idle_seconds` without a page request ends the journey
(RTS (EU) 2018/389 Art. 4(3)(d): at most 5 minutes of inactivity), and so does
`journey_seconds` after the start (BPCE: 30 minutes overall). Both are checked on every request
from the injected clock; the page timer only mirrors them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from stetgate.bank.sca import CHALLENGE_APPROVED, CHALLENGE_PENDING, CHALLENGE_REJECTED
from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.secrets import new_secret, secret_hash
from stetgate.store.schema import psu_journeys

KIND_AUTHORIZE = "authorize"
KIND_CONNECTED_APPS = "connected_apps"

STAGE_IDENTIFY = "identify"
STAGE_METHOD = "method"
STAGE_SCA = "sca"
STAGE_CONSENT = "consent"
STAGE_APPS = "apps"
STAGE_DONE = "done"

OUTCOME_GRANTED = "granted"
OUTCOME_CONSENT_REFUSED = "consent_refused"
OUTCOME_AUTHENTICATION_FAILED = "authentication_failed"  # too many failures, or PSU blocked
OUTCOME_SCA_REJECTED = "sca_rejected"  # the PSU said no in the banking app
OUTCOME_SCA_UNAVAILABLE = "sca_unavailable"  # no SCA method enrolled
OUTCOME_TIMEOUT = "timeout"
OUTCOME_CLIENT_REJECTED = "client_rejected"
OUTCOME_SUPERSEDED = "superseded"
OUTCOME_SIGNED_OUT = "signed_out"


_CHALLENGE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed


@dataclass(frozen=True)
class Journey:
    id_hash: str
    kind: str
    request: AuthorizationRequest
    """The TPP's validated request (``authorize`` journeys; empty for connected apps)."""
    lang: str
    psu_id: str | None
    stage: str
    sca_method: str | None
    app_challenge_id: str | None
    app_challenge_status: str | None
    csrf_token: str
    started_at: datetime
    last_activity_at: datetime
    sca_completed_at: datetime | None
    outcome: str | None
    failed_attempts: int
    sca_service_challenge_id: str | None = None
    """The bank's SCA-service id of the decoupled challenge (`stetgate.sca_http`), if any."""

    @property
    def finished(self) -> bool:
        return self.stage == STAGE_DONE

    def deadline(self, idle_seconds: int, journey_seconds: int) -> datetime:
        """When the journey times out if nothing happens: the earlier of the idle limit and
        the whole-journey limit."""
        return min(
            self.last_activity_at + timedelta(seconds=idle_seconds),
            self.started_at + timedelta(seconds=journey_seconds),
        )

    def expired(self, now: datetime, idle_seconds: int, journey_seconds: int) -> bool:
        return now >= self.deadline(idle_seconds, journey_seconds)

    def seconds_left(self, now: datetime, idle_seconds: int, journey_seconds: int) -> int:
        left = (self.deadline(idle_seconds, journey_seconds) - now).total_seconds()
        return max(0, int(left))


def new_challenge_id() -> str:
    """A decoupled-SCA reference: 10 characters (50 bits), easy to read and type."""
    return "".join(secrets.choice(_CHALLENGE_ALPHABET) for _ in range(10))


def normalise_challenge_id(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def format_challenge_id(challenge_id: str) -> str:
    return f"{challenge_id[:5]}-{challenge_id[5:]}"


def start_journey(
    conn: Connection,
    *,
    kind: str,
    request: AuthorizationRequest | None,
    lang: str,
    now: datetime,
) -> str:
    """Insert a journey at the identification stage; returns the session id (cookie only)."""
    session_id = new_secret()
    conn.execute(
        insert(psu_journeys).values(
            id_hash=secret_hash(session_id),
            kind=kind,
            **_request_columns(request or NO_REQUEST),
            lang=lang,
            psu_id=None,
            stage=STAGE_IDENTIFY,
            sca_method=None,
            app_challenge_id=None,
            app_challenge_status=None,
            csrf_token=new_secret(),
            started_at=now,
            last_activity_at=now,
            sca_completed_at=None,
            outcome=None,
            failed_attempts=0,
            sca_service_challenge_id=None,
        )
    )
    return session_id


def load_journey(conn: Connection, session_id: str) -> Journey | None:
    row = (
        conn.execute(select(psu_journeys).where(psu_journeys.c.id_hash == secret_hash(session_id)))
        .mappings()
        .first()
    )
    return None if row is None else _journey(row)


def journey_by_challenge(conn: Connection, challenge_id: str) -> Journey | None:
    row = (
        conn.execute(select(psu_journeys).where(psu_journeys.c.app_challenge_id == challenge_id))
        .mappings()
        .first()
    )
    return None if row is None else _journey(row)


def journey_by_service_challenge(conn: Connection, service_id: str) -> Journey | None:
    row = (
        conn.execute(
            select(psu_journeys).where(psu_journeys.c.sca_service_challenge_id == service_id)
        )
        .mappings()
        .first()
    )
    return None if row is None else _journey(row)


def pending_challenges(conn: Connection, psu_id: str) -> list[Journey]:
    """Journeys of `psu_id` waiting for a decoupled confirmation (callers drop expired ones)."""
    rows = (
        conn.execute(
            select(psu_journeys)
            .where(psu_journeys.c.psu_id == psu_id)
            .where(psu_journeys.c.stage == STAGE_SCA)
            .where(psu_journeys.c.app_challenge_status == CHALLENGE_PENDING)
            .where(psu_journeys.c.sca_service_challenge_id.is_(None))  # held by the SCA service
            .order_by(psu_journeys.c.started_at)
        )
        .mappings()
        .all()
    )
    return [_journey(row) for row in rows]


def touch(conn: Connection, journey: Journey, now: datetime, lang: str | None = None) -> None:
    """A page request: the idle timer restarts (and the language choice is kept)."""
    values: dict[str, Any] = {"last_activity_at": now}
    if lang is not None and lang != journey.lang:
        values["lang"] = lang
    conn.execute(
        update(psu_journeys)
        .where(psu_journeys.c.id_hash == journey.id_hash)
        .where(psu_journeys.c.stage != STAGE_DONE)
        .values(**values)
    )


def advance(
    conn: Connection, journey: Journey, *, to_stage: str, now: datetime, **values: Any
) -> bool:
    """Move from the journey's current stage to `to_stage`; False when another request moved
    it first (nothing is changed then)."""
    result = conn.execute(
        update(psu_journeys)
        .where(psu_journeys.c.id_hash == journey.id_hash)
        .where(psu_journeys.c.stage == journey.stage)
        .values(stage=to_stage, last_activity_at=now, **values)
    )
    return result.rowcount == 1


def advance_renewing_session(
    conn: Connection, journey: Journey, *, to_stage: str, now: datetime, **values: Any
) -> str | None:
    """`advance`, under a new session id and CSRF token: the new session id (for the cookie),
    or None when another request moved the journey first.

    An authentication step is done (identification, SCA, the bank's OP): the session id and the
    CSRF token the browser had before it stop working (OWASP ASVS v4 3.2.1, "new session token
    on user authentication"). Otherwise whoever obtained the pre-login cookie and token — shared
    device, a link with a planted session — could post the consent after the PSU's SCA (found
    by an outside attack run)."""
    session_id = new_secret()
    moved = advance(
        conn,
        journey,
        to_stage=to_stage,
        now=now,
        id_hash=secret_hash(session_id),
        csrf_token=new_secret(),
        **values,
    )
    return session_id if moved else None


def finish(conn: Connection, journey: Journey, outcome: str, now: datetime) -> bool:
    """End the journey with `outcome`; False when it had already ended."""
    result = conn.execute(
        update(psu_journeys)
        .where(psu_journeys.c.id_hash == journey.id_hash)
        .where(psu_journeys.c.stage != STAGE_DONE)
        .values(
            stage=STAGE_DONE,
            outcome=outcome,
            last_activity_at=now,
            app_challenge_status=None
            if journey.app_challenge_status == CHALLENGE_PENDING
            else journey.app_challenge_status,
        )
    )
    return result.rowcount == 1


def count_failure(conn: Connection, journey: Journey, now: datetime) -> int:
    """One more failed attempt in this journey; returns the new count."""
    count = conn.execute(
        update(psu_journeys)
        .where(psu_journeys.c.id_hash == journey.id_hash)
        .values(failed_attempts=psu_journeys.c.failed_attempts + 1, last_activity_at=now)
        .returning(psu_journeys.c.failed_attempts)
    ).scalar_one()
    return int(count)


def decide_challenge(
    conn: Connection, challenge_id: str, *, approve: bool, psu_id: str | None = None
) -> Journey | None:
    """The in-process banking app's answer to a pending decoupled challenge; returns the
    journey, or None when no such challenge is pending (for `psu_id`, when given)."""
    status = CHALLENGE_APPROVED if approve else CHALLENGE_REJECTED
    # A challenge held by the bank's SCA service is answered there only (`settle_service_…`).
    which = (psu_journeys.c.app_challenge_id == challenge_id) & (
        psu_journeys.c.sca_service_challenge_id.is_(None)
    )
    return settle_challenge(conn, which, status, psu_id=psu_id)


def settle_service_challenge(conn: Connection, service_id: str, status: str) -> Journey | None:
    """The bank's SCA service's final answer (``approved``, ``rejected``, ``expired``) for its
    challenge `service_id`; None when no such challenge is pending — a second answer, or one
    for a journey that moved on, changes nothing (exactly once)."""
    return settle_challenge(conn, psu_journeys.c.sca_service_challenge_id == service_id, status)


def settle_challenge(
    conn: Connection, which: Any, status: str, *, psu_id: str | None = None
) -> Journey | None:
    """Compare-and-set a pending challenge (at the SCA stage) to `status`: the one place a
    decoupled answer is written, so it is written once."""
    query = (
        update(psu_journeys)
        .where(which)
        .where(psu_journeys.c.app_challenge_status == CHALLENGE_PENDING)
        .where(psu_journeys.c.stage == STAGE_SCA)
    )
    if psu_id is not None:
        query = query.where(psu_journeys.c.psu_id == psu_id)
    row = (
        conn.execute(query.values(app_challenge_status=status).returning(*psu_journeys.c))
        .mappings()
        .first()
    )
    return None if row is None else _journey(row)


NO_REQUEST = AuthorizationRequest(
    client_id="",
    redirect_uri="",
    scope="",
    state=None,
    code_challenge=None,
    code_challenge_method=None,
)
"""What a connected-apps journey stores in the request columns: no TPP is involved."""

_REQUEST_FIELDS = tuple(f.name for f in fields(AuthorizationRequest))
_JOURNEY_COLUMNS = tuple(name for name in Journey.__dataclass_fields__ if name != "request")


def _request_columns(request: AuthorizationRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in _REQUEST_FIELDS}


def _journey(row: Any) -> Journey:
    return Journey(
        request=AuthorizationRequest(**{name: row[name] for name in _REQUEST_FIELDS}),
        **{name: row[name] for name in _JOURNEY_COLUMNS},
    )
