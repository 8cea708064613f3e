"""A real OpenID Provider for the delegated-login tests: node ``oidc-provider`` (panva), the
demo OP shipped in the package (`stetgate.demo.openid_provider`, ``stetgate/demo/oidc_op``),
started on 127.0.0.1 over plain HTTP.

Installing it is automatic and idempotent: ``npm ci`` from the committed lockfile into
``var/oidc-op`` at the repository's top (git ignores ``var/``), done again only when
``package-lock.json`` changed. Without node or npm, or without the registry, the tests are
skipped with the reason — unless ``STETGATE_REQUIRE_OIDC=1``, which turns that into a failure
(CI that must run them).

The OP is driven like a browser would: its login page is a plain HTML form (login, the
``acr``/``amr`` it will assert, or "Cancel" → ``error=access_denied``), posted with httpx.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from stetgate.demo.openid_provider import (
    STRONG_ACR,
    WEAK_ACR,
    OpConfig,
    OpProcess,
    OpUnavailable,
    install,
)

OP_FOLDER = Path(__file__).resolve().parents[2] / "var" / "oidc-op"
CLIENT_ID = "stetgate"
CLIENT_SECRET = "stetgate-op-secret"
_ACTION = re.compile(r'<form method="post" action="([^"]+/login)">')
_ABORT = re.compile(r'<form method="post" action="([^"]+/abort)">')

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "STRONG_ACR",
    "WEAK_ACR",
    "RunningOp",
    "ensure_installed",
    "login_page",
    "sign_in",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("STETGATE_REQUIRE_OIDC") == "1":
        pytest.fail(f"OpenID Provider tests required (STETGATE_REQUIRE_OIDC=1): {reason}")
    pytest.skip(f"OpenID Provider tests need node and npm: {reason}")


def ensure_installed() -> str:
    """``npm ci`` once per lockfile; returns the node executable."""
    try:
        return install(OP_FOLDER)
    except OpUnavailable as exc:
        _unavailable(str(exc))
        raise


@dataclass
class RunningOp:
    """One ``server.js`` process. `restart` keeps the issuer and port but generates a new
    signing key (and forgets the OP's sessions): a key rotation as the RP sees it."""

    node: str
    port: int
    redirect_uri: str
    id_token_ttl: int = 600
    client_jwk: str | None = None
    """Public JWK (JSON) of a private_key_jwt client; None: client_secret_basic."""
    _process: OpProcess | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningOp:
        config = OpConfig(
            self.port,
            self.redirect_uri,
            CLIENT_ID,
            client_secret=CLIENT_SECRET,
            client_jwk=self.client_jwk,
            id_token_ttl=self.id_token_ttl,
        )
        self._process = OpProcess(self.node, OP_FOLDER, config)
        self._process.start()
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kid(self) -> str:
        keys = httpx.get(f"{self.issuer}/jwks", timeout=5).json()["keys"]
        kid: str = keys[0]["kid"]
        return kid

    def login_page(self, http: httpx.Client, authorization_url: str) -> tuple[str, httpx.Response]:
        return login_page(self.issuer, http, authorization_url)

    def sign_in(self, http: httpx.Client, authorization_url: str, **at_op: Any) -> str:
        return sign_in(self.issuer, http, authorization_url, **at_op)


# --- the PSU at an OP --------------------------------------------------------------------------
def login_page(
    issuer: str, http: httpx.Client, authorization_url: str
) -> tuple[str, httpx.Response]:
    """Follow the authorization request to the OP's login page; returns its URL and page."""
    assert authorization_url.startswith(issuer + "/"), authorization_url
    response = http.get(authorization_url)
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    page_url = urljoin(issuer, response.headers["location"])
    page = http.get(page_url)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    return page_url, page


def sign_in(
    issuer: str,
    http: httpx.Client,
    authorization_url: str,
    *,
    login: str = "alice",
    acr: str = STRONG_ACR,
    amr: str = "pwd otp",
    abort: bool = False,
) -> str:
    """The PSU at the OP: returns the URL the OP sends the browser back to (stetgate's
    callback with ``code``/``error``, ``state`` and ``iss``)."""
    _, page = login_page(issuer, http, authorization_url)
    if abort:
        action = _ABORT.search(page.text)
        assert action, page.text[:500]
        response = http.post(urljoin(issuer, action.group(1)))
    else:
        action = _ACTION.search(page.text)
        assert action, page.text[:500]
        response = http.post(
            urljoin(issuer, action.group(1)),
            data={"login": login, "acr": acr, "amr": amr},
        )
    # The interaction ends with a redirect back to the authorization endpoint, which
    # answers with the redirect to the client.
    for _ in range(4):
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        location = urljoin(issuer, response.headers["location"])
        if not location.startswith(issuer):
            return location
        response = http.get(location)
    raise AssertionError("the OP did not send the browser back")
