"""Journey time limits (docs/decisions.md#lifetimes: 300 s idle per screen, 1800 s overall) and
challenge
references, as pure rules on values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.psu.journeys import (
    Journey,
    format_challenge_id,
    new_challenge_id,
    normalise_challenge_id,
)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
JOURNEY = Journey(
    id_hash="0" * 64,
    kind="authorize",
    request=AuthorizationRequest(
        client_id="c",
        redirect_uri="https://t/cb",
        scope="aisp",
        state=None,
        code_challenge=None,
        code_challenge_method=None,
    ),
    lang="fr",
    psu_id=None,
    stage="identify",
    sca_method=None,
    app_challenge_id=None,
    app_challenge_status=None,
    csrf_token="t",
    started_at=START,
    last_activity_at=START,
    sca_completed_at=None,
    outcome=None,
    failed_attempts=0,
)


def test_idle_limit_counts_from_the_last_page_request() -> None:
    journey = replace(JOURNEY, last_activity_at=START + timedelta(seconds=100))
    assert journey.deadline(300, 1800) == START + timedelta(seconds=400)
    assert not journey.expired(START + timedelta(seconds=399), 300, 1800)
    assert journey.expired(START + timedelta(seconds=400), 300, 1800)
    assert journey.seconds_left(START + timedelta(seconds=150), 300, 1800) == 250


def test_whole_journey_limit_wins_over_recent_activity() -> None:
    journey = replace(JOURNEY, last_activity_at=START + timedelta(seconds=1700))
    assert journey.deadline(300, 1800) == START + timedelta(seconds=1800)
    assert journey.expired(START + timedelta(seconds=1800), 300, 1800)
    assert journey.seconds_left(START + timedelta(seconds=1790), 300, 1800) == 10


def test_seconds_left_never_negative() -> None:
    assert JOURNEY.seconds_left(START + timedelta(hours=2), 300, 1800) == 0


def test_challenge_references_are_readable_and_normalised() -> None:
    challenge = new_challenge_id()
    assert len(challenge) == 10 and not set(challenge) & set("01IO")
    shown = format_challenge_id(challenge)
    assert shown[5] == "-" and normalise_challenge_id(shown.lower()) == challenge
    assert new_challenge_id() != challenge
