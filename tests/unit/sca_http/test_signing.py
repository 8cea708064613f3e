"""The contract's HMAC-SHA256 signature: what it covers and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stetgate.sca_http.signing import SignatureError, sign, verify

SECRET = "k" * 40
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
BODY = b'{"challenge_id":"abc","status":"approved"}'


def _verify(
    header: str | None,
    *,
    method: str = "POST",
    path: str = "/psu/sca/callback",
    body: bytes = BODY,
    now: datetime = NOW,
    secret: str = SECRET,
) -> None:
    verify(secret, header, method, path, body, now=now, max_skew_seconds=300)


def test_a_signature_verifies_within_the_window() -> None:
    header = sign(SECRET, NOW, "POST", "/psu/sca/callback", BODY)
    assert header.startswith(f"t={int(NOW.timestamp())},v1=")
    _verify(header)
    _verify(header, now=NOW + timedelta(seconds=300))
    _verify(header, now=NOW - timedelta(seconds=300))


@pytest.mark.parametrize(
    "change",
    [
        {"body": BODY.replace(b"approved", b"rejected")},
        {"path": "/psu/sca/callbackx"},
        {"method": "PUT"},
        {"secret": "j" * 40},
        {"now": NOW + timedelta(seconds=301)},
        {"now": NOW - timedelta(seconds=301)},
    ],
)
def test_any_change_or_an_old_timestamp_is_refused(change: dict[str, object]) -> None:
    header = sign(SECRET, NOW, "POST", "/psu/sca/callback", BODY)
    with pytest.raises(SignatureError):
        _verify(header, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        "t=1,t=2,v1=00",
        "t=-5,v1=00",
        "t=١٢٣,v1=00",  # non-ASCII digits
        "t=99999999999999,v1=00",
        f"t={int(NOW.timestamp())}",
        f"t={int(NOW.timestamp())},v1=",
        f"t={int(NOW.timestamp())},v1=zz",
        f"t={int(NOW.timestamp())},v0=00",
        "x" * 300,
    ],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(SignatureError):
        _verify(header)
