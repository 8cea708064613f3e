"""`HttpAppMethod`: the "app" SCA method backed by the bank's SCA service over HTTP.

It implements `stetgate.bank.sca.ScaMethod` and its `DecoupledScaMethod` extension, so the
PSU pages drive it exactly as the in-process `AppMethod` (same form, waiting page and status
poll). Its calls are synchronous httpx with a connect/read timeout: the pages already run
methods on the worker's bounded thread pool (`stetgate.serving.blocking`), so a slow service
holds one pool thread for at most ``sca_http_timeout_seconds``, never the event loop. Any
failure to get a usable answer is `ScaServiceUnavailable`, raised *before* the journey is
written, so the PSU sees the 503 page and can try again on an intact journey.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from stetgate.bank.psus import Psu, PsuDirectory
from stetgate.bank.sca import (
    CHALLENGE_APPROVED,
    CHALLENGE_EXPIRED,
    CHALLENGE_PENDING,
    CHALLENGE_REJECTED,
    ChallengeContext,
    ScaAttempt,
    ScaCheck,
    ScaServiceUnavailable,
)
from stetgate.clock import Clock
from stetgate.psu.decoupled import answer_service_challenge
from stetgate.psu.journeys import journey_by_service_challenge
from stetgate.sca_http.contract import (
    CALLBACK_PATH,
    CHALLENGE_ID,
    CHALLENGES_PATH,
    CONTRACT_VERSION,
    FINAL_STATES,
    VERSION_HEADER,
    challenge_path,
)
from stetgate.sca_http.signing import SIGNATURE_HEADER, sign
from stetgate.settings import Settings

_CHECKS = {
    CHALLENGE_APPROVED: ScaCheck.COMPLETED,
    CHALLENGE_REJECTED: ScaCheck.REJECTED,
    CHALLENGE_EXPIRED: ScaCheck.EXPIRED,
}


class HttpAppMethod:
    name = "app"
    template = "app_wait.html"

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if settings.sca_http_url is None or settings.sca_http_secret is None:
            raise ValueError("HttpAppMethod needs sca_http_url and sca_http_secret")
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._secret = settings.sca_http_secret
        self._poll = settings.sca_http_mode == "poll"
        self._callback_url = settings.resolved_issuer.rstrip("/") + CALLBACK_PATH
        self._http = httpx.Client(
            base_url=settings.sca_http_url.rstrip("/"),
            timeout=httpx.Timeout(settings.sca_http_timeout_seconds),
            follow_redirects=False,
            transport=transport,
        )

    # --- ScaMethod ----------------------------------------------------------------------------
    def enrolled(self, psu: Psu) -> bool:
        return psu.app_sca

    def begin(self) -> dict[str, Any]:
        """Never used by the pages (they call `start` with the context); a challenge cannot be
        created without saying to the PSU who asks what."""
        raise ScaServiceUnavailable("HttpAppMethod starts challenges with start(context)")

    def check(
        self, directory: PsuDirectory, attempt: ScaAttempt, form: Mapping[str, str], now: datetime
    ) -> ScaCheck:
        status = attempt.app_challenge_status
        if status == CHALLENGE_PENDING and self._poll:
            status = self.refresh(attempt, now) or status
        return _CHECKS.get(status or "", ScaCheck.PENDING)

    # --- DecoupledScaMethod -------------------------------------------------------------------
    def start(self, context: ChallengeContext) -> dict[str, Any]:
        body = {
            "psu_id": context.psu_id,
            "reference": f"{context.reference[:5]}-{context.reference[5:]}",
            "tpp_name": context.client_name,
            "access": context.access,
            "expires_at": context.expires_at.isoformat(),
            "callback_url": None if self._poll else self._callback_url,
        }
        answer = self._call("POST", CHALLENGES_PATH, body, context.request_id, expect=201)
        challenge_id = answer.get("challenge_id")
        if not isinstance(challenge_id, str) or not CHALLENGE_ID.fullmatch(challenge_id):
            raise ScaServiceUnavailable("the SCA service gave no usable challenge_id")
        return {
            "app_challenge_id": context.reference,
            "app_challenge_status": CHALLENGE_PENDING,
            "sca_service_challenge_id": challenge_id,
        }

    def refresh(self, attempt: ScaAttempt, now: datetime) -> str | None:
        """Poll mode: ask the service, record a final answer (exactly once), and return the
        state the journey now has. Callback mode: None (the callback writes the answer)."""
        service_id = attempt.sca_service_challenge_id
        if not self._poll or service_id is None or not CHALLENGE_ID.fullmatch(service_id):
            return None
        answer = self._call("GET", challenge_path(service_id), None, None, expect=200)
        status = answer.get("status")
        if status == CHALLENGE_PENDING:
            return CHALLENGE_PENDING
        if status not in FINAL_STATES or answer.get("challenge_id") != service_id:
            raise ScaServiceUnavailable("the SCA service gave no usable status")
        assert isinstance(status, str)
        answer_service_challenge(self._engine, self._settings, service_id, status, now=now)
        with self._engine.begin() as conn:
            journey = journey_by_service_challenge(conn, service_id)
        return None if journey is None else journey.app_challenge_status

    # --- HTTP ---------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        request_id: str | None,
        *,
        expect: int,
    ) -> dict[str, Any]:
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {
            SIGNATURE_HEADER: sign(self._secret, self._clock.now(), method, path, content),
            VERSION_HEADER: CONTRACT_VERSION,
            "X-Request-ID": request_id or str(uuid.uuid4()),
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ScaServiceUnavailable(f"SCA service {method} {path}: {exc!r}") from exc
        if response.status_code != expect:
            raise ScaServiceUnavailable(f"SCA service {method} {path}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise ScaServiceUnavailable(f"SCA service {method} {path}: not JSON") from exc
        if not isinstance(answer, dict):
            raise ScaServiceUnavailable(f"SCA service {method} {path}: not a JSON object")
        return answer

    def close(self) -> None:
        self._http.close()
