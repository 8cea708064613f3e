"""A demo OpenID Provider standing for a bank's own identity provider: node ``oidc-provider``
(panva, the certified OP that Keycloak-class products are measured against), the server in
``stetgate/demo/oidc_op/server.js``, on 127.0.0.1 over plain HTTP.

Why it ships in the package: the delegated-login demo (``stetgate sandbox --delegated-login``),
the tests and the benchmark all need the same real OP, and an installed ``stetgate`` has no
``tests/`` folder. The package holds only the server and its lockfile; `install` copies them
into a folder of the caller's (the sandbox's data folder, the test run's cache) and runs
``npm ci`` there — the package folder may be read-only (site-packages), and ``npm ci`` from the
committed lockfile installs exactly the audited dependency tree (no resolution). It is done
again only when the lockfile changed (its digest is kept next to it), under a file lock so
parallel test processes install once.

The OP signs ID tokens with an RSA key generated at start (a restart is a key rotation), has
one confidential client (stetgate: ``client_secret_basic`` or ``private_key_jwt``, PKCE S256
required, OpenID Connect Core §3.1 and RFC 7636) and a plain-HTML login form where the PSU
names its login and the ``acr``/``amr`` the OP asserts — it stands for the bank's own strong
authentication, it is not one: never put it in front of real customers.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SOURCE = Path(__file__).parent / "oidc_op"
FILES = ("server.js", "package.json", "package-lock.json")
STRONG_ACR = "urn:bank:sca"
"""The ``acr`` the demo OP asserts by default, the one stetgate is configured to accept."""
WEAK_ACR = "urn:bank:password"
DISCOVERY_PATH = "/.well-known/openid-configuration"
INSTALL_TIMEOUT_SECONDS = 300


class OpUnavailable(RuntimeError):
    """node or npm is missing, or ``npm ci`` failed: the demo OP cannot run here."""


def node_and_npm() -> tuple[str, str]:
    """The node and npm executables on PATH; `OpUnavailable` when either is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise OpUnavailable(
            f"{missing} not found on PATH: the demo OpenID Provider needs Node.js ≥ 18 and npm"
        )
    return node, npm


def install(folder: Path) -> str:
    """Copy the OP into `folder` and ``npm ci`` it once per lockfile; returns the path of the
    node executable. Raises `OpUnavailable` with the reason."""
    node, npm = node_and_npm()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        for name in FILES:
            wanted = (SOURCE / name).read_bytes()
            target = folder / name
            if not target.exists() or target.read_bytes() != wanted:
                target.write_bytes(wanted)
        digest = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
        marker = folder / ".installed-lock.sha256"
        installed = marker.read_text().strip() if marker.exists() else ""
        if installed != digest or not (folder / "node_modules" / "oidc-provider").is_dir():
            try:
                subprocess.run(  # noqa: S603 - fixed argv, no shell
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=folder,
                    check=True,
                    capture_output=True,
                    timeout=INSTALL_TIMEOUT_SECONDS,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                output = getattr(exc, "stderr", b"") or b""
                raise OpUnavailable(
                    f"npm ci in {folder} failed: {exc} {output.decode(errors='replace')[-300:]}"
                ) from None
            marker.write_text(digest)
    return node


@dataclass(frozen=True)
class OpConfig:
    """What the OP is started with: where it listens and stetgate's registration there."""

    port: int
    redirect_uri: str
    """stetgate's ``ISSUER/psu/oidc/callback``, exactly (OIDC Core §3.1.2.1)."""
    client_id: str
    client_secret: str | None = None
    """client_secret_basic; None with `client_jwk`."""
    client_jwk: str | None = None
    """Public JWK (JSON) of a private_key_jwt client (RFC 7523)."""
    id_token_ttl: int = 600

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return self.issuer + DISCOVERY_PATH

    def argv(self, node: str, folder: Path) -> list[str]:
        """node resolves ``oidc-provider`` next to the script, whatever the working folder."""
        return [node, str(folder / "server.js")]

    def environment(self) -> dict[str, str]:
        """The server's configuration (its variables: server.js)."""
        env = {
            "OP_PORT": str(self.port),
            "OP_ISSUER": self.issuer,
            "OP_REDIRECT_URI": self.redirect_uri,
            "OP_CLIENT_ID": self.client_id,
            "OP_ID_TOKEN_TTL": str(self.id_token_ttl),
        }
        if self.client_jwk is not None:
            env["OP_CLIENT_JWK"] = self.client_jwk
        elif self.client_secret is not None:
            env["OP_CLIENT_SECRET"] = self.client_secret
        else:
            raise ValueError("OpConfig needs client_secret or client_jwk")
        return env


class OpProcess:
    """One ``server.js`` process started and stopped by its caller (tests, the benchmark; the
    sandbox runs it under its supervisor instead). `start` returns once discovery answers.
    Its output goes to `log` (default: a temporary file removed by `stop`): a pipe nobody
    reads would stop the OP once full."""

    def __init__(self, node: str, folder: Path, config: OpConfig, log: Path | None = None) -> None:
        self.node = node
        self.folder = folder
        self.config = config
        self._own_log = log is None
        if log is None:
            handle, name = tempfile.mkstemp(prefix=f"stetgate-op-{config.port}-", suffix=".log")
            os.close(handle)
            log = Path(name)
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 60.0) -> None:
        """Raises `OpUnavailable` with the OP's output when it exits or does not answer within
        `timeout` (node's start — module loading, the RSA key — is slow on a loaded box)."""
        with self.log.open("wb") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.config.argv(self.node, self.folder),
                env={**os.environ, **self.config.environment()},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = httpx.get(self.config.discovery_url, timeout=1, trust_env=False)
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise OpUnavailable(f"the demo OP did not start: {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._own_log:
            self.log.unlink(missing_ok=True)
