"""The sandbox's SCA service: the demo implementation of the bank's side of the contract.

A small Starlette app, run on its own (``stetgate demo-sca serve``) or in a test's server. It
keeps challenges in memory (a sandbox restarts empty), checks stetgate's signatures, and plays
the banking app through two unsigned demo endpoints — never part of the contract:

- ``GET /app/challenges?psu_id=…``: the PSU's pending challenges (reference, TPP, access);
- ``POST /app/challenges/{id}/answer`` ``{"decision": "approve"|"reject"|"expire",
  "psu_id": optional}``: answer once (409 after, or for another PSU), then, if stetgate gave a
  callback URL, deliver the signed callback. ``{id}`` is the service's challenge id or the
  reference the PSU reads on its waiting page (any case, dash optional).

An unanswered challenge past its ``expires_at`` reads ``expired`` when polled.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stetgate.bank.sca import (
    CHALLENGE_APPROVED,
    CHALLENGE_EXPIRED,
    CHALLENGE_PENDING,
    CHALLENGE_REJECTED,
)
from stetgate.clock import Clock, SystemClock
from stetgate.sca_http.contract import (
    CHALLENGES_PATH,
    CONTRACT_VERSION,
    VERSION_HEADER,
    challenge_path,
)
from stetgate.sca_http.signing import SIGNATURE_HEADER, SignatureError, sign, verify

_DECISIONS = {
    "approve": CHALLENGE_APPROVED,
    "reject": CHALLENGE_REJECTED,
    "expire": CHALLENGE_EXPIRED,
}
MAX_SKEW_SECONDS = 300


@dataclass
class DemoChallenge:
    challenge_id: str
    psu_id: str
    reference: str
    tpp_name: str | None
    access: str | None
    expires_at: datetime
    callback_url: str | None
    request_id: str | None
    created_at: datetime
    status: str = CHALLENGE_PENDING

    def public(self, now: datetime) -> dict[str, Any]:
        status = self.status
        if status == CHALLENGE_PENDING and now >= self.expires_at:
            status = CHALLENGE_EXPIRED
        return {
            "challenge_id": self.challenge_id,
            "status": status,
            "reference": self.reference,
            "tpp_name": self.tpp_name,
            "access": self.access,
            "expires_at": self.expires_at.isoformat(),
            "created_at": self.created_at.isoformat(),
        }


class DemoScaService:
    """State and handlers of the demo service (one per app)."""

    def __init__(
        self,
        secret: str,
        *,
        clock: Clock | None = None,
        callback_verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        self.secret = secret
        self.clock = clock or SystemClock()
        self.callback_verify = callback_verify
        self.challenges: dict[str, DemoChallenge] = {}
        self.requests_seen: list[str] = []
        """X-Request-IDs received (tests check the correlation id travels)."""
        self._lock = threading.Lock()
        self.down = False
        """Tests: answer 503 to stetgate, as a service in maintenance would."""
        self.delay_seconds = 0.0
        """Tests: wait this long before answering stetgate (a slow service)."""

    async def _checked(self, request: Request, path: str) -> bytes | Response:
        import anyio

        if self.delay_seconds:
            await anyio.sleep(self.delay_seconds)
        if self.down:
            return JSONResponse({"error": "maintenance"}, status_code=503)
        body = await request.body()
        try:
            verify(
                self.secret,
                request.headers.get(SIGNATURE_HEADER),
                request.method,
                path,
                body,
                now=self.clock.now(),
                max_skew_seconds=MAX_SKEW_SECONDS,
            )
        except SignatureError:
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        if request.headers.get(VERSION_HEADER) != CONTRACT_VERSION:
            return JSONResponse({"error": "unsupported_version"}, status_code=400)
        self.requests_seen.append(request.headers.get("x-request-id", ""))
        return body

    async def create(self, request: Request) -> Response:
        body = await self._checked(request, CHALLENGES_PATH)
        if isinstance(body, Response):
            return body
        try:
            message = json.loads(body)
            challenge = DemoChallenge(
                challenge_id=secrets.token_urlsafe(18),
                psu_id=str(message["psu_id"]),
                reference=str(message["reference"]),
                tpp_name=message.get("tpp_name"),
                access=message.get("access"),
                expires_at=datetime.fromisoformat(message["expires_at"]),
                callback_url=message.get("callback_url"),
                request_id=request.headers.get("x-request-id"),
                created_at=self.clock.now(),
            )
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "invalid_body"}, status_code=400)
        with self._lock:
            self.challenges[challenge.challenge_id] = challenge
        return JSONResponse(
            {"challenge_id": challenge.challenge_id, "status": CHALLENGE_PENDING}, status_code=201
        )

    async def read(self, request: Request) -> Response:
        challenge_id = request.path_params["challenge_id"]
        body = await self._checked(request, challenge_path(challenge_id))
        if isinstance(body, Response):
            return body
        challenge = self.challenges.get(challenge_id)
        if challenge is None:
            return JSONResponse({"error": "unknown_challenge"}, status_code=404)
        public = challenge.public(self.clock.now())
        return JSONResponse({"challenge_id": challenge_id, "status": public["status"]})

    # --- the demo banking app (not the contract) ---------------------------------------------
    async def pending(self, request: Request) -> Response:
        psu_id = request.query_params.get("psu_id", "")
        now = self.clock.now()
        listed = [
            c.public(now)
            for c in list(self.challenges.values())
            if c.psu_id == psu_id and c.public(now)["status"] == CHALLENGE_PENDING
        ]
        return JSONResponse({"challenges": listed})

    def find(self, key: str) -> DemoChallenge | None:
        """By the service's id, or by the reference the PSU reads (``ABCDE-FGHJK``)."""
        found = self.challenges.get(key)
        if found is not None:
            return found
        wanted = _normalised(key)
        return next(
            (c for c in self.challenges.values() if _normalised(c.reference) == wanted), None
        )

    def decide(self, key: str, status: str, psu_id: str | None = None) -> DemoChallenge | None:
        """Answer once: None when unknown, another PSU's, or no longer pending."""
        with self._lock:
            challenge = self.find(key)
            if challenge is None or (psu_id is not None and challenge.psu_id != psu_id):
                return None
            if challenge.public(self.clock.now())["status"] != CHALLENGE_PENDING:
                return None
            challenge.status = status
            return challenge

    async def answer(self, request: Request) -> Response:
        try:
            message = await request.json()
            status = _DECISIONS[message["decision"]]
            psu_id = message.get("psu_id")
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"error": "invalid_body"}, status_code=400)
        challenge = self.decide(request.path_params["challenge_id"], status, psu_id)
        if challenge is None:
            return JSONResponse({"error": "not_pending"}, status_code=409)
        delivered = None
        if challenge.callback_url:
            delivered = await self.deliver(challenge)
        return JSONResponse({"status": status, "callback_status": delivered})

    async def deliver(self, challenge: DemoChallenge) -> int | None:
        """POST the signed answer to stetgate's callback; its HTTP status (None: not reached)."""
        assert challenge.callback_url is not None
        body = json.dumps(
            {"challenge_id": challenge.challenge_id, "status": challenge.status},
            separators=(",", ":"),
        ).encode()
        path = httpx.URL(challenge.callback_url).path
        headers = {
            SIGNATURE_HEADER: sign(self.secret, self.clock.now(), "POST", path, body),
            VERSION_HEADER: CONTRACT_VERSION,
            "Content-Type": "application/json",
        }
        if challenge.request_id:
            headers["X-Request-ID"] = challenge.request_id
        try:
            async with httpx.AsyncClient(verify=self.callback_verify, timeout=10) as http:
                response = await http.post(challenge.callback_url, content=body, headers=headers)
        except httpx.HTTPError:
            return None
        return response.status_code


def _normalised(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def demo_sca_app(service: DemoScaService) -> Starlette:
    app = Starlette(
        routes=[
            Route(CHALLENGES_PATH, service.create, methods=["POST"]),
            Route(CHALLENGES_PATH + "/{challenge_id}", service.read, methods=["GET"]),
            Route("/app/challenges", service.pending, methods=["GET"]),
            Route("/app/challenges/{challenge_id}/answer", service.answer, methods=["POST"]),
        ]
    )
    app.state.sca_service = service
    return app
