"""``POST /psu/sca/callback``: where the bank's SCA service delivers a challenge's answer.

Not a PSU page (no session, no CSRF token, JSON in and out): the caller is the bank's service,
authenticated by the contract's HMAC signature (`stetgate.sca_http.signing`) checked against
the injected clock. Answers, none of which says more than needed:

- 204: recorded; the PSU's waiting page sees it on its next poll;
- 400: not the contract's body or version (``Sca-Contract-Version: 1``);
- 401: signature missing, wrong or too old;
- 404: no journey has this challenge id;
- 409: the challenge already has its answer, or its journey ended or timed out — a replayed or
  second callback changes nothing (exactly once: `answer_service_challenge`).
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stetgate.psu.decoupled import ServiceAnswer, answer_service_challenge
from stetgate.sca_http.contract import (
    CALLBACK_PATH,
    CHALLENGE_ID,
    CONTRACT_VERSION,
    FINAL_STATES,
    VERSION_HEADER,
)
from stetgate.sca_http.signing import SIGNATURE_HEADER, SignatureError, verify
from stetgate.services import services_of

log = logging.getLogger(__name__)

_HEADERS = {"Cache-Control": "no-store"}


def _error(status_code: int, error: str) -> Response:
    return JSONResponse({"error": error}, status_code=status_code, headers=_HEADERS)


async def sca_callback(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    assert settings.sca_http_secret is not None
    now = services.clock.now()
    body = await request.body()
    try:
        verify(
            settings.sca_http_secret,
            request.headers.get(SIGNATURE_HEADER),
            "POST",
            CALLBACK_PATH,
            body,
            now=now,
            max_skew_seconds=settings.sca_http_max_skew_seconds,
        )
    except SignatureError as exc:
        log.warning("SCA callback refused: %s", exc)
        return _error(401, "invalid_signature")
    if request.headers.get(VERSION_HEADER) != CONTRACT_VERSION:
        return _error(400, "unsupported_version")
    try:
        message = json.loads(body)
    except ValueError:
        return _error(400, "invalid_body")
    if not isinstance(message, dict):
        return _error(400, "invalid_body")
    challenge_id, status = message.get("challenge_id"), message.get("status")
    if not isinstance(challenge_id, str) or not CHALLENGE_ID.fullmatch(challenge_id):
        return _error(400, "invalid_body")
    if status not in FINAL_STATES:
        return _error(400, "invalid_body")
    assert isinstance(status, str)
    answer = await services.blocking.run(
        answer_service_challenge, services.engine, settings, challenge_id, status, now=now
    )
    if answer is ServiceAnswer.UNKNOWN:
        log.warning("SCA callback for an unknown challenge refused")
        return _error(404, "unknown_challenge")
    if answer is ServiceAnswer.FINISHED:
        log.warning("SCA callback for a finished challenge refused (second answer or replay)")
        return _error(409, "challenge_finished")
    return Response(status_code=204, headers=_HEADERS)


def routes() -> list[BaseRoute]:
    return [Route(CALLBACK_PATH, sca_callback, methods=["POST"])]
