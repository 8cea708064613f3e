"""ASGI middleware applied to every route: request-size limit and baseline security headers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TooLargeAnswer = Callable[[Scope], Response]
"""How one API answers a body over the limit, in its own error format (status 413)."""

_SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """HSTS, nosniff and no-referrer on every response (the PSU pages add their own CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """The request body exceeds ``max_body_bytes``; rendered as 413 by the owning API."""


class BodySizeLimit:
    """Refuses bodies over the limit before they are buffered (declared or streamed size).

    The 413 is answered in the format of the API the path belongs to — ``answers`` maps path
    prefixes to renderers (the STET error body with ``X-Request-ID`` under the resource API,
    the RFC 7591 body with the echo under the register API; wired by `stetgate.app`) — and the
    OAuth JSON error elsewhere. A streamed (chunked) body that grows past the limit raises
    `BodyTooLarge` from ``receive``; the APIs let it through their own catch-alls so it is
    answered here, never as a 500."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        answers: Sequence[tuple[str, TooLargeAnswer]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.answers = tuple(answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    await _reject(send, True)
                    return
                if declared > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        for prefix, answer in self.answers:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                await answer(scope)(scope, receive, send)
                return
        await _reject(send, False)


async def _reject(send: Send, bad_length: bool) -> None:
    status = 400 if bad_length else 413
    body: Any = (
        b'{"error":"invalid_request","error_description":"bad Content-Length"}'
        if bad_length
        else b'{"error":"invalid_request","error_description":"request body too large"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
