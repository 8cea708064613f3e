"""The PSU's session cookie: a signed random session id, the journey row keyed by its hash.

- The id is 256 random bits (`new_secret`); the database holds only its SHA-256
  (`psu_journeys.id_hash`), so a database read does not yield live sessions.
- The cookie value is the id signed with an HMAC-SHA-256 key derived for this purpose
  (`InstanceKeys.cookie_key`, itsdangerous): a forged or altered cookie is refused before any
  database lookup.
- ``HttpOnly`` (no script access), ``Secure`` (setting ``cookie_secure``, off only for plain-HTTP
  local runs), ``Path=/``, no ``Domain`` — and with Secure the ``__Host-`` name prefix, which
  browsers only accept under exactly those attributes (RFC 6265bis §4.1.3.2).
- ``SameSite=Lax``: the journey starts with a cross-site top-level GET (the TPP sends the
  browser to /authorize) and must keep the cookie on the bank's own pages; Lax still withholds
  it from cross-site POSTs and sub-resources (RFC 6265bis §5.4.7), and every form also carries
  a per-journey CSRF token.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

SECURE_COOKIE_NAME = "__Host-stetgate-psu"
PLAIN_COOKIE_NAME = "stetgate-psu"


class SessionCookie:
    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._signer = Signer(key, salt="stetgate.psu-session", digest_method=hashlib.sha256)
        self.secure = secure
        self.name = SECURE_COOKIE_NAME if secure else PLAIN_COOKIE_NAME

    def attach(self, response: Response, session_id: str) -> None:
        """A browser-session cookie (no Max-Age): it must outlive the journey's own limits,
        so a form submitted after the whole-journey timeout still reaches the journey and
        gets the ``timeout`` callback instead of a "no session" page."""
        response.set_cookie(
            self.name,
            self._signer.sign(session_id.encode()).decode(),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def session_id(self, request: Request) -> str | None:
        """The session id of a well-signed cookie, else None."""
        raw = request.cookies.get(self.name)
        if not raw or len(raw) > 200:
            return None
        try:
            return self._signer.unsign(raw.encode()).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.name, path="/", secure=self.secure, httponly=True, samesite="lax"
        )
