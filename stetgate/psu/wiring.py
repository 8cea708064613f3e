"""Where the PSU pages find the bank's PSU directory and SCA methods.

Both live in ``Services.extras`` so a deployment (or a test) can put its own implementation
there before the first request — a core-banking `PsuDirectory`, an extra `ScaMethod` — and the
demo bank's database implementation is built on first use otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from stetgate.bank.psus import DatabasePsuDirectory, PsuDirectory
from stetgate.psu.sca import ScaMethod, default_sca_methods
from stetgate.psu.sessions import SessionCookie
from stetgate.services import Services

DIRECTORY_KEY = "psu_directory"
SCA_METHODS_KEY = "sca_methods"


def database_directory(services: Services) -> DatabasePsuDirectory:
    settings = services.settings
    return DatabasePsuDirectory(
        services.engine,
        services.keys.totp_fernet,
        max_failed_attempts=settings.max_failed_auth_attempts,
        block_seconds=settings.psu_block_seconds,
    )


def psu_directory(services: Services) -> PsuDirectory:
    found = services.extras.get(DIRECTORY_KEY)
    if found is None:
        found = services.extras.setdefault(DIRECTORY_KEY, database_directory(services))
    return cast(PsuDirectory, found)


def sca_methods(services: Services) -> Sequence[ScaMethod]:
    found = services.extras.get(SCA_METHODS_KEY)
    if found is None:
        found = services.extras.setdefault(SCA_METHODS_KEY, default_sca_methods())
    return cast(Sequence[ScaMethod], found)


def session_cookie(services: Services) -> SessionCookie:
    return SessionCookie(services.keys.cookie_key, secure=services.settings.cookie_secure)
