"""Defects for the doctor's acceptance tests, each injected from outside a real stetgate bank
(never a flag in production code): ASGI middlewares that change what the bank answers, and
substitutes for one collaborator, installed with pytest's ``monkeypatch`` for the duration of
one test (the bank lives exactly as long).

- `without_request_id_echo`: answers lose ``X-Request-ID``;
- `with_foreign_error_bodies`: resource-API errors come back as ``{"errors": [{"code", "detail"}]}``
  (the shape of another API family) instead of the STET error structure;
- `without_issuer_in_callback`: redirects lose their ``iss`` parameter (the metadata still
  announces it);
- `accept_replayed_codes`: a redeemed code is seen as never used (code store substitute);
- `skip_signature_verification`: the QSealC keyring accepts any request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stetgate.oauth import authorization_code
from stetgate.psd2.signatures import SealKeyring

API = "/stet/psd2/v1.4.2"


def _headers_filter(
    app: ASGIApp, change: Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]
) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_changed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": change(list(message.get("headers", [])))}
            await send(message)

        await app(scope, receive, send_changed)

    return wrapped


def without_request_id_echo(app: ASGIApp) -> ASGIApp:
    return _headers_filter(app, lambda hs: [(k, v) for k, v in hs if k.lower() != b"x-request-id"])


def _without_iss(location: bytes) -> bytes:
    parts = urlsplit(location.decode("latin-1"))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    return parts._replace(query=urlencode(query)).geturl().encode("latin-1")


def without_issuer_in_callback(app: ASGIApp) -> ASGIApp:
    return _headers_filter(
        app, lambda hs: [(k, _without_iss(v) if k.lower() == b"location" else v) for k, v in hs]
    )


def with_foreign_error_bodies(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API):
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = list(start.get("headers", []))
            if start["status"] >= 400 and body:
                original = json.loads(body)
                body = json.dumps(
                    {"errors": [{"code": str(start["status"]), "detail": original.get("message")}]}
                ).encode()
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, buffer)

    return wrapped


def accept_replayed_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The code store forgets redemptions: a used code reads as unused and claims succeed."""
    find_code = authorization_code.find_code

    def forgetful_find(conn: Any, code_hash: str) -> Any:
        code = find_code(conn, code_hash)
        return None if code is None else dataclasses.replace(code, used_at=None)

    monkeypatch.setattr(authorization_code, "find_code", forgetful_find)
    monkeypatch.setattr(authorization_code, "claim_code", lambda conn, code_hash, now: True)


def skip_signature_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyring answers every request as verified, without looking at the signature."""
    monkeypatch.setattr(SealKeyring, "verify", lambda self, *args, **kwargs: None)
