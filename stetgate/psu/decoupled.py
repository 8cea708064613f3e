"""The banking-app side of the decoupled SCA method: list and answer pending challenges.

In a real bank, the app on the PSU's enrolled phone does this after its own device binding; in
the sandbox the demo phone page (`stetgate.demo.phone_pages`) and ``stetgate psu approve|reject``
play the app. A challenge can be answered once, only while its journey waits at the SCA stage
and has not timed out; the answer is audited.

Both functions are synchronous database work: the CLI calls them directly, the phone pages
inside their hop off the event loop (`stetgate.serving.blocking`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import Engine

from stetgate.bank.sca import CHALLENGE_APPROVED, CHALLENGE_EXPIRED, CHALLENGE_REJECTED
from stetgate.oauth.clients import get_client
from stetgate.psu.journeys import (
    KIND_AUTHORIZE,
    decide_challenge,
    format_challenge_id,
    journey_by_challenge,
    journey_by_service_challenge,
    normalise_challenge_id,
    pending_challenges,
    settle_service_challenge,
)
from stetgate.settings import Settings
from stetgate.store.audit import record_event
from stetgate.store.audit_events import (
    DECOUPLED_SCA_APPROVED,
    DECOUPLED_SCA_EXPIRED,
    DECOUPLED_SCA_REJECTED,
)

SERVICE_RESULTS = frozenset({CHALLENGE_APPROVED, CHALLENGE_REJECTED, CHALLENGE_EXPIRED})
"""The final answers the bank's SCA service may give."""


class ServiceAnswer(Enum):
    """What became of an answer from the bank's SCA service (`answer_service_challenge`)."""

    RECORDED = "recorded"
    UNKNOWN = "unknown"  # no journey has this challenge id
    FINISHED = "finished"  # already answered, or the journey moved on or timed out: unchanged


@dataclass(frozen=True)
class PendingChallenge:
    challenge_id: str
    reference: str
    """The challenge id as the PSU page shows it (``ABCDE-FGHJK``)."""
    client_name: str | None
    """The TPP asking, or None for the PSU's own sign-in (connected apps)."""
    started_at: datetime


def pending_for(
    engine: Engine, settings: Settings, psu_id: str, now: datetime
) -> list[PendingChallenge]:
    """The PSU's challenges still waiting for an answer (timed-out journeys left out)."""
    out = []
    with engine.begin() as conn:
        for journey in pending_challenges(conn, psu_id):
            if journey.expired(
                now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
            ):
                continue
            assert journey.app_challenge_id is not None
            name = None
            if journey.kind == KIND_AUTHORIZE:
                client = get_client(conn, journey.request.client_id)
                name = client.name if client else journey.request.client_id
            out.append(
                PendingChallenge(
                    journey.app_challenge_id,
                    format_challenge_id(journey.app_challenge_id),
                    name,
                    journey.started_at,
                )
            )
    return out


def answer_challenge(
    engine: Engine,
    settings: Settings,
    challenge: str,
    *,
    approve: bool,
    now: datetime,
    psu_id: str | None = None,
) -> bool:
    """Approve or reject a pending challenge (reference with or without dash, any case);
    False when there is no such pending challenge (for `psu_id`, when given)."""
    challenge_id = normalise_challenge_id(challenge)
    if not challenge_id or len(challenge_id) > 64:
        return False
    with engine.begin() as conn:
        journey = journey_by_challenge(conn, challenge_id)
        if journey is None or journey.expired(
            now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
        ):
            return False
        answered = decide_challenge(conn, challenge_id, approve=approve, psu_id=psu_id)
        if answered is None:
            return False
        record_event(
            conn,
            now,
            DECOUPLED_SCA_APPROVED if approve else DECOUPLED_SCA_REJECTED,
            client_id=answered.request.client_id or None,
            psu_id=answered.psu_id,
            detail={"journey": answered.id_hash[:16]},
        )
    return True


def answer_service_challenge(
    engine: Engine, settings: Settings, service_id: str, status: str, *, now: datetime
) -> ServiceAnswer:
    """Record the bank's SCA service's final answer for its challenge `service_id` (a signed
    callback or a poll, `stetgate.sca_http`), exactly once: a second answer, or one for a
    journey that ended or timed out, is refused and changes nothing. Audited."""
    if status not in SERVICE_RESULTS:
        raise ValueError(f"not a final challenge state: {status!r}")
    with engine.begin() as conn:
        journey = journey_by_service_challenge(conn, service_id)
        if journey is None:
            return ServiceAnswer.UNKNOWN
        if journey.expired(
            now, settings.psu_idle_timeout_seconds, settings.psu_journey_timeout_seconds
        ):
            return ServiceAnswer.FINISHED
        answered = settle_service_challenge(conn, service_id, status)
        if answered is None:
            return ServiceAnswer.FINISHED
        record_event(
            conn,
            now,
            DECOUPLED_SCA_APPROVED
            if status == CHALLENGE_APPROVED
            else DECOUPLED_SCA_REJECTED
            if status == CHALLENGE_REJECTED
            else DECOUPLED_SCA_EXPIRED,
            client_id=answered.request.client_id or None,
            psu_id=answered.psu_id,
            detail={"journey": answered.id_hash[:16]},
        )
    return ServiceAnswer.RECORDED
