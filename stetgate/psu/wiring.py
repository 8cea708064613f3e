"""The PSU session cookie of an app instance (its key and ``Secure`` flag come from the
instance's keys and settings)."""

from __future__ import annotations

from stetgate.psu.sessions import SessionCookie
from stetgate.services import Services


def session_cookie(services: Services) -> SessionCookie:
    return SessionCookie(services.keys.cookie_key, secure=services.settings.cookie_secure)
