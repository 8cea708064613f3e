"""RFC 6238 one-time codes: the reference vectors, the ±1 step window and replay refusal."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from stetgate.demo.totp import (
    InvalidTotpSecret,
    already_accepted,
    decode_totp_secret,
    hotp,
    matching_step,
    new_totp_secret,
    seconds_left_in_step,
    time_step,
    totp_at,
    window_step,
)

RFC_KEY = b"12345678901234567890"  # RFC 6238 Appendix B, SHA-1 seed


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize(
    ("unix_time", "eight_digits"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_codes_match_the_rfc_6238_test_vectors(unix_time: int, eight_digits: str) -> None:
    # same HMAC and truncation; 6 digits are the last 6 of the 8-digit vectors
    assert totp_at(RFC_KEY, _at(unix_time)) == eight_digits[-6:]


def test_hotp_matches_rfc_4226_appendix_d() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314"]
    assert [hotp(RFC_KEY, counter) for counter in range(5)] == expected


def test_current_and_adjacent_steps_are_accepted() -> None:
    now = _at(1_700_000_000)
    step = time_step(now)
    for drift in (-1, 0, 1):
        assert matching_step(RFC_KEY, hotp(RFC_KEY, step + drift), now, None) == step + drift


@pytest.mark.parametrize("drift", [-2, 2, 10])
def test_codes_two_steps_away_are_refused(drift: int) -> None:
    now = _at(1_700_000_000)
    assert matching_step(RFC_KEY, hotp(RFC_KEY, time_step(now) + drift), now, None) is None


def test_a_step_already_accepted_is_refused() -> None:
    now = _at(1_700_000_000)
    step = time_step(now)
    code = hotp(RFC_KEY, step)
    assert matching_step(RFC_KEY, code, now, last_accepted_step=step) is None
    assert matching_step(RFC_KEY, hotp(RFC_KEY, step - 1), now, last_accepted_step=step) is None
    assert matching_step(RFC_KEY, hotp(RFC_KEY, step + 1), now, last_accepted_step=step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert matching_step(RFC_KEY, code, _at(1_700_000_000), None) is None


def test_new_secrets_are_160_bit_base32() -> None:
    secret = new_totp_secret()
    assert len(secret) == 32 and secret == secret.upper()
    assert decode_totp_secret(secret) == base64.b32decode(secret)
    assert new_totp_secret() != secret


def test_secret_decoding_tolerates_spaces_case_and_padding() -> None:
    secret = base64.b32encode(RFC_KEY).decode()
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)).lower()
    assert decode_totp_secret(spaced) == RFC_KEY
    assert decode_totp_secret(secret.rstrip("=")) == RFC_KEY


@pytest.mark.parametrize("text", ["not base32!", "ABC", "AAAAAAAA"])
def test_bad_or_short_secrets_are_refused(text: str) -> None:
    with pytest.raises(InvalidTotpSecret):
        decode_totp_secret(text)


def test_seconds_left_in_step() -> None:
    assert seconds_left_in_step(_at(60)) == 30
    assert seconds_left_in_step(_at(89)) == 1


def test_the_window_step_ignores_replay_and_the_replay_rule_is_apart() -> None:
    now = _at(1_700_000_000)
    step = time_step(now)
    assert window_step(RFC_KEY, hotp(RFC_KEY, step), now) == step
    assert window_step(RFC_KEY, hotp(RFC_KEY, step + 2), now) is None
    assert already_accepted(step, step) and already_accepted(step - 1, step)
    assert not already_accepted(step + 1, step) and not already_accepted(step, None)
