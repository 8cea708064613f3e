"""The real nginx (Debian's /usr/sbin/nginx) running the shipped deploy/nginx/stetgate.conf.

`require_nginx()` skips a test module with a visible reason when nginx is absent, except under
``STETGATE_REQUIRE_NGINX=1`` (CI), where that is an error. `start_nginx` renders the shipped
configuration with the test's ports and certificate — each ``ADJUST`` line is replaced, and a
line that is no longer there fails the test, so the file and the test cannot drift apart — and
runs nginx in the foreground as a child process with its own prefix, pid file, logs and temp
directories: the system's nginx service is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = Path("/usr/sbin/nginx")
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "stetgate.conf"

_MAIN_CONFIG = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/stetgate.conf;
}}
"""


def nginx_binary() -> Path | None:
    if NGINX.exists():
        return NGINX
    found = shutil.which("nginx")
    return Path(found) if found else None


def require_nginx() -> Path:
    found = nginx_binary()
    if found is not None:
        return found
    if os.environ.get("STETGATE_REQUIRE_NGINX") == "1":
        raise RuntimeError("STETGATE_REQUIRE_NGINX=1 but nginx is missing (apt-get install nginx)")
    pytest.skip(
        "nginx is not installed at /usr/sbin/nginx (apt-get install nginx)",
        allow_module_level=True,
    )


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx/stetgate.conf no longer has {old!r} exactly once"
    return text.replace(old, new)


def render_config(*, listen_port: int, upstream: str, cert: Path, key: Path, prefix: Path) -> str:
    """The shipped configuration with the test's ports, certificate and log file."""
    text = SHIPPED_CONFIG.read_text()
    text = _replace_once(text, "server 10.0.0.20:8443;", f"server {upstream};")
    text = _replace_once(text, "listen 443 ssl;", f"listen 127.0.0.1:{listen_port} ssl;")
    text = _replace_once(text, "/etc/stetgate/tls/server.pem;", f"{cert};")
    text = _replace_once(text, "/etc/stetgate/tls/server.key;", f"{key};")
    return _replace_once(
        text, "/var/log/nginx/stetgate.access.log stetgate;", f"{prefix}/access.log stetgate;"
    )


@dataclass
class RunningNginx:
    url: str
    prefix: Path
    process: subprocess.Popen[bytes]

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def access_log(self) -> str:
        path = self.prefix / "access.log"
        return path.read_text() if path.exists() else ""

    def logged(self, text: str, timeout: float = 5.0) -> bool:
        """Whether ``text`` shows in the access log (nginx writes the line once the response has
        gone out, so the test may read the file just before it)."""
        deadline = time.monotonic() + timeout
        while text not in self.access_log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the master stops its workers on SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_nginx(prefix: Path, *, port: int, upstream: str, cert: Path, key: Path) -> RunningNginx:
    """nginx on 127.0.0.1:``port`` (a `tests.support.servers.free_port`: the bank's issuer is
    nginx's URL, so the port is chosen before the bank starts), proxying to ``upstream``
    (host:port)."""
    binary = require_nginx()
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    (prefix / "stetgate.conf").write_text(
        render_config(listen_port=port, upstream=upstream, cert=cert, key=key, prefix=prefix)
    )
    main = prefix / "nginx.conf"
    main.write_text(_MAIN_CONFIG.format(prefix=prefix))
    command = [str(binary), "-p", str(prefix), "-c", str(main), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    running = RunningNginx(f"https://127.0.0.1:{port}", prefix, process)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}: {running.error_log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return running
        except OSError:
            if time.monotonic() > deadline:
                running.stop()
                raise RuntimeError(f"nginx did not listen: {running.error_log()}") from None
            time.sleep(0.02)
