"""A real OpenID Provider for the delegated-login tests: node ``oidc-provider`` (panva), the
server in ``tests/support/oidc_op/server.js``, started on 127.0.0.1 over plain HTTP.

Installing it is automatic and idempotent: ``npm ci`` from the committed lockfile into
``tests/support/oidc_op/node_modules``, done again only when ``package-lock.json`` changed
(its digest is kept next to it). Without node or npm, or without the registry, the tests are
skipped with the reason — unless ``STETGATE_REQUIRE_OIDC=1``, which turns that into a failure
(CI that must run them).

The OP is driven like a browser would: its login page is a plain HTML form (login, the
``acr``/``amr`` it will assert, or "Cancel" → ``error=access_denied``), posted with httpx.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

OP_DIR = Path(__file__).parent / "oidc_op"
CLIENT_ID = "stetgate"
CLIENT_SECRET = "stetgate-op-secret"
STRONG_ACR = "urn:bank:sca"
WEAK_ACR = "urn:bank:password"
_ACTION = re.compile(r'<form method="post" action="([^"]+/login)">')
_ABORT = re.compile(r'<form method="post" action="([^"]+/abort)">')


def _unavailable(reason: str) -> None:
    if os.environ.get("STETGATE_REQUIRE_OIDC") == "1":
        pytest.fail(f"OpenID Provider tests required (STETGATE_REQUIRE_OIDC=1): {reason}")
    pytest.skip(f"OpenID Provider tests need node and npm: {reason}")


def ensure_installed() -> str:
    """``npm ci`` once per lockfile; returns the node executable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node or npm not on PATH")
    assert node is not None and npm is not None
    lock = OP_DIR / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    marker = OP_DIR / ".installed-lock.sha256"
    with open(OP_DIR / ".install.lock", "w") as guard:  # pytest-xdist or parallel runs
        fcntl.flock(guard, fcntl.LOCK_EX)
        installed = marker.read_text().strip() if marker.exists() else ""
        if installed != digest or not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
            try:
                subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=OP_DIR,
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                output = getattr(exc, "stderr", b"") or b""
                _unavailable(f"npm ci failed: {exc} {output.decode(errors='replace')[-300:]}")
            marker.write_text(digest)
    return node


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
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningOp:
        env = dict(
            os.environ,
            OP_PORT=str(self.port),
            OP_ISSUER=self.issuer,
            OP_REDIRECT_URI=self.redirect_uri,
            OP_CLIENT_ID=CLIENT_ID,
            OP_CLIENT_SECRET=CLIENT_SECRET,
            OP_ID_TOKEN_TTL=str(self.id_token_ttl),
        )
        if self.client_jwk is not None:
            env["OP_CLIENT_JWK"] = self.client_jwk
        self._process = subprocess.Popen(
            [self.node, "server.js"],
            cwd=OP_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                if response.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                stderr = b""
                if self._process.poll() is not None and self._process.stderr is not None:
                    stderr = self._process.stderr.read()
                self.stop()
                raise RuntimeError(f"test OP did not start: {stderr.decode(errors='replace')}")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kid(self) -> str:
        keys = httpx.get(f"{self.issuer}/jwks", timeout=5).json()["keys"]
        kid: str = keys[0]["kid"]
        return kid

    # --- the PSU at the OP ------------------------------------------------------------------
    def login_page(self, http: httpx.Client, authorization_url: str) -> tuple[str, httpx.Response]:
        """Follow the authorization request to the OP's login page; returns its URL and page."""
        assert authorization_url.startswith(self.issuer + "/"), authorization_url
        response = http.get(authorization_url)
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        page_url = urljoin(self.issuer, response.headers["location"])
        page = http.get(page_url)
        assert page.status_code == 200, (page.status_code, page.text[:300])
        return page_url, page

    def sign_in(
        self,
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
        _, page = self.login_page(http, authorization_url)
        if abort:
            action = _ABORT.search(page.text)
            assert action, page.text[:500]
            response = http.post(urljoin(self.issuer, action.group(1)))
        else:
            action = _ACTION.search(page.text)
            assert action, page.text[:500]
            response = http.post(
                urljoin(self.issuer, action.group(1)),
                data={"login": login, "acr": acr, "amr": amr},
            )
        # The interaction ends with a redirect back to the authorization endpoint, which
        # answers with the redirect to the client.
        for _ in range(4):
            assert response.status_code in (302, 303), (response.status_code, response.text[:300])
            location = urljoin(self.issuer, response.headers["location"])
            if not location.startswith(self.issuer):
                return location
            response = http.get(location)
        raise AssertionError("the OP did not send the browser back")
