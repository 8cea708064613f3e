"""A one-shot HTTPS listener on the loopback that catches the bank's redirect for a terminal.

A TPP developer driving the cinematic from `stetgate tpp authorize --listen` has no web app to
receive step 4 (the PSU's browser coming back with ``code`` and ``state``). RFC 8252 §7.3 gives
native apps the loopback: the app listens on ``127.0.0.1`` on a port the operating system picks
and the bank accepts any port for a registered loopback redirect URI. The listener:

- serves HTTPS with a certificate the kit makes once for ``127.0.0.1``/``::1`` (self-signed: it
  is its own CA, printed so the developer can import it or accept the browser's warning);
- answers only the registered path, and only a callback carrying the expected ``state``
  (RFC 6749 §10.12: another request is refused and the listener keeps waiting);
- holds the browser's answer until the terminal has exchanged the code, so the page says
  whether tokens were stored.

Blocking by design (a command line): ``wait`` blocks the calling thread; the HTTP server runs on
its own thread and is closed with the listener.
"""

from __future__ import annotations

import html
import ipaddress
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stetgate.tpp.client import write_private_bytes

CERT_DAYS = 365
ANSWER_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class LocalTls:
    cert: Path
    key: Path


def local_tls(folder: Path, now: datetime | None = None) -> LocalTls:
    """The listener's certificate and key in ``folder`` (``callback.pem``/``callback.key``),
    made on first use and again when less than a day of validity is left."""
    cert_path, key_path = folder / "callback.pem", folder / "callback.key"
    now = now or datetime.now(UTC)
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if current.not_valid_after_utc - timedelta(days=1) > now:
            return LocalTls(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stetgate tpp local callback")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private_bytes(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return LocalTls(cert_path, key_path)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A browser that drops a connection (a preconnect, a closed tab) is not an error
        worth a traceback in the developer's terminal."""


class _QuietServer6(_QuietServer):
    address_family = socket.AF_INET6


class CallbackListener:
    """Listen on ``https://HOST:PORT/PATH`` (port 0: the OS picks) for one callback."""

    def __init__(
        self, tls: LocalTls, *, host: str = "127.0.0.1", port: int = 0, path: str = "/callback"
    ) -> None:
        self.path = path
        self._expected_state: str | None = None
        self._received = threading.Event()
        self._answered = threading.Event()
        self._callback: str | None = None
        self._answer = ""
        self._host = f"[{host}]" if ":" in host else host
        server_class = _QuietServer6 if ":" in host else _QuietServer
        self._server = server_class((host, port), self._handler_class())
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.cert), str(tls.key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def redirect_uri(self, registered: str) -> str:
        """``registered`` (a loopback URI, with or without port) with the listening port."""
        parts = urlsplit(registered)
        host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
        return parts._replace(netloc=f"{host}:{self.port}").geturl()

    def start(self, expected_state: str) -> None:
        self._expected_state = expected_state
        self._thread.start()

    def wait(self, timeout: float) -> str | None:
        """The full callback URL (``https://127.0.0.1:PORT/callback?…``), or None on timeout."""
        if not self._received.wait(timeout):
            return None
        return self._callback

    def answer(self, message: str) -> None:
        """What the PSU's browser shows once the terminal is done with the callback."""
        self._answer = message
        self._answered.set()

    def close(self) -> None:
        self._answered.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self, target: str) -> str | None:
        """None when ``target`` is this authorization's callback (kept), else why not."""
        parts = urlsplit(target)
        if parts.path != self.path:
            return "not found"
        state = parse_qs(parts.query).get("state", [""])[0]
        expected = self._expected_state or ""
        if not expected or not secrets.compare_digest(state.encode(), expected.encode()):
            return "this callback is not for the authorization the terminal is waiting for"
        with self._lock:
            if self._received.is_set():
                return "the callback already came"
            self._callback = f"https://{self._host}:{self.port}{target}"
            self._received.set()
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                problem = listener._accept(self.path)
                if problem is not None:
                    self._send(404 if problem == "not found" else 400, problem)
                    return
                listener._answered.wait(ANSWER_WAIT_SECONDS)
                self._send(200, listener._answer or "callback received")

            def _send(self, status: int, message: str) -> None:
                body = (
                    "<!doctype html><html lang=en><meta charset=utf-8>"
                    "<title>stetgate tpp</title>"
                    f"<p id=result>{html.escape(message)}</p><p>You can close this tab.</p>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Silent: the request line carries the authorization code."""

        return Handler
