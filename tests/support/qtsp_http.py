"""The test QTSP on the network: its CRL over HTTP and an OCSP responder (RFC 6960 Appendix A,
POST), on 127.0.0.1 and a port the OS chooses, in a background thread.

`QtspOnline` creates a QTSP of its own (own CA, own data folder) whose certificates carry
this server's CRL distribution point and OCSP URL, so a bank that fetches revocation data
finds a revocation only through the network — never through a shared folder. ``down()`` makes
every request fail at the TCP level (the listening socket closes), ``up()`` restores it on the
same port.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from stetgate.clock import Clock, SystemClock
from stetgate.eidas import qtsp


class QtspOnline:
    """A test QTSP serving ``/crl/qtsp.crl`` and ``POST /ocsp``."""

    def __init__(
        self,
        root: Path,
        clock: Clock | None = None,
        *,
        crl_validity: timedelta = timedelta(days=30),
        ocsp_validity: timedelta = timedelta(hours=1),
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.data_dir = root / "online-qtsp"
        self.crl_validity = crl_validity
        self.ocsp_validity = ocsp_validity
        self.requests: list[str] = []
        self._httpd = self._bind(0)
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        qtsp.init_qtsp(
            self.data_dir,
            ["localhost", "127.0.0.1"],
            f"{self.base_url}/crl",
            ocsp_url=f"{self.base_url}/ocsp",
            now=self.clock.now(),
        )
        self.publish_crl()
        self._serve()

    @property
    def trust_dir(self) -> Path:
        return self.data_dir / "trust"

    def publish_crl(self, *, validity: timedelta | None = None) -> None:
        """thisUpdate a minute back (a bank whose frozen clock started a little earlier)."""
        qtsp.publish_crl(
            self.data_dir,
            now=self.clock.now() - timedelta(minutes=1),
            validity=validity or self.crl_validity,
        )

    def revoke(self, cert_pem: Path) -> None:
        qtsp.revoke(self.data_dir, cert_pem, now=self.clock.now() - timedelta(minutes=1))
        self.publish_crl()

    def issue(self, out: Path, **knobs: object) -> qtsp.IssuedTpp:
        return qtsp.issue_tpp(
            self.data_dir,
            "PSDFR-ACPR-77777",
            "Online TPP",
            ["AISP", "CBPII"],
            out,
            **{"now": self.clock.now() - timedelta(minutes=5), **knobs},  # type: ignore[arg-type]
        )

    def down(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def up(self) -> None:
        self._httpd = self._bind(self.port)
        self._serve()

    def close(self) -> None:
        self.down()

    def _bind(self, port: int) -> ThreadingHTTPServer:
        online = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                online.requests.append(f"GET {self.path}")
                crl = online.data_dir / "crl" / qtsp.CRL_FILE_NAME
                if self.path != f"/crl/{qtsp.CRL_FILE_NAME}":
                    self._answer(404, b"not found", "text/plain")
                    return
                self._answer(200, crl.read_bytes(), "application/pkix-crl")

            def do_POST(self) -> None:
                online.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/ocsp":
                    self._answer(404, b"not found", "text/plain")
                    return
                answer = qtsp.answer_ocsp(
                    online.data_dir,
                    body,
                    now=online.clock.now() - timedelta(minutes=1),
                    validity=online.ocsp_validity,
                )
                self._answer(200, answer, "application/ocsp-response")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        return httpd

    def _serve(self) -> None:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
