"""The local callback listener of `stetgate tpp authorize --listen`: its certificate, the port
in the redirect URI, and what it accepts (only this authorization's state, once)."""

from __future__ import annotations

import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from stetgate.tpp.callback_listener import CallbackListener, local_tls


def _trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_the_certificate_is_made_once_names_the_loopback_and_is_private(tmp_path: Path) -> None:
    tls = local_tls(tmp_path)
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert stat.S_IMODE(tls.key.stat().st_mode) == 0o600
    again = local_tls(tmp_path)
    assert again.cert.read_bytes() == tls.cert.read_bytes(), "reused while valid"


def test_a_certificate_about_to_expire_is_replaced(tmp_path: Path) -> None:
    first = local_tls(tmp_path).cert.read_bytes()
    later = datetime.now(UTC) + timedelta(days=365)
    renewed = local_tls(tmp_path, now=later)
    assert renewed.cert.read_bytes() != first
    cert = x509.load_pem_x509_certificate(renewed.cert.read_bytes())
    assert cert.not_valid_after_utc > later + timedelta(days=300)


@pytest.mark.parametrize(
    ("registered", "expected"),
    [
        ("https://127.0.0.1/callback", "https://127.0.0.1:{port}/callback"),
        ("https://127.0.0.1:8446/callback", "https://127.0.0.1:{port}/callback"),
        ("https://[::1]/cb?x=1", "https://[::1]:{port}/cb?x=1"),
    ],
)
def test_the_redirect_uri_carries_the_listening_port(
    tmp_path: Path, registered: str, expected: str
) -> None:
    with CallbackListener(local_tls(tmp_path)) as listener:
        assert listener.redirect_uri(registered) == expected.format(port=listener.port)


def test_only_this_authorization_s_callback_is_taken_and_only_once(tmp_path: Path) -> None:
    tls = local_tls(tmp_path)
    with CallbackListener(tls) as listener:
        listener.start("the-state")
        base = f"https://127.0.0.1:{listener.port}"
        with httpx.Client(verify=_trusting(tls.cert), timeout=10) as http:
            assert http.get(f"{base}/callback?code=c&state=other").status_code == 400
            assert http.get(f"{base}/callback?code=c").status_code == 400
            assert http.get(f"{base}/elsewhere?state=the-state").status_code == 404
            assert listener.wait(0.05) is None, "still waiting"
            listener.answer("connected <b>")
            page = http.get(f"{base}/callback?code=c&state=the-state")
            assert page.status_code == 200
            assert "connected &lt;b&gt;" in page.text, "escaped"
            assert page.headers["Cache-Control"] == "no-store"
            assert listener.wait(1) == f"{base}/callback?code=c&state=the-state"
            assert http.get(f"{base}/callback?code=d&state=the-state").status_code == 400
    assert listener.wait(0) == f"{base}/callback?code=c&state=the-state"


def test_nothing_is_accepted_before_start(tmp_path: Path) -> None:
    tls = local_tls(tmp_path)
    with CallbackListener(tls) as listener:
        listener._thread.start()  # serving, but no state expected yet
        url = f"https://127.0.0.1:{listener.port}/callback?code=c&state="
        assert httpx.get(url, verify=_trusting(tls.cert)).status_code == 400
