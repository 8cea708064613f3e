"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), the possession factor of the
demo bank's "code" SCA method.

Profile: HMAC-SHA-1, 30-second steps from the Unix epoch, 6 digits — what every authenticator
app accepts (RFC 6238 §4, §5.2). Secrets are 160 bits (RFC 4226 §4 R6 recommends 160) and
travel as unpadded RFC 4648 base32, the form authenticator apps take. A verifier accepts the
current step ±1 (RFC 6238 §5.2 "one time step backward" for network delay, and one forward for
clock skew) and must refuse a step it has already accepted (RFC 6238 §5.2, "the verifier MUST
NOT accept the second attempt of the OTP after the successful validation"): the caller keeps
the last accepted step (``psus.totp_last_step``) and passes it in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from datetime import datetime

STEP_SECONDS = 30
DIGITS = 6
ACCEPTED_DRIFT_STEPS = 1
SECRET_BYTES = 20


class InvalidTotpSecret(ValueError):
    """The text is not an RFC 4648 base32 secret of at least 80 bits (RFC 4226 §4 R6)."""


def new_totp_secret() -> str:
    """A fresh 160-bit secret, base32 without padding (authenticator-app form)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def decode_totp_secret(text: str) -> bytes:
    """Base32 text (case, spaces and padding tolerated) to key bytes; raises InvalidTotpSecret."""
    cleaned = "".join(text.split()).upper().rstrip("=")
    padded = cleaned + "=" * (-len(cleaned) % 8)
    try:
        key = base64.b32decode(padded, casefold=False)
    except (binascii.Error, ValueError):
        raise InvalidTotpSecret("TOTP secret must be RFC 4648 base32 (A-Z, 2-7)") from None
    if len(key) < 10:
        raise InvalidTotpSecret("TOTP secret must be at least 80 bits (16 base32 characters)")
    return key


def time_step(at: datetime) -> int:
    """RFC 6238 §4.2: T = floor((unix time - T0) / X) with T0 = 0, X = 30 s."""
    return int(at.timestamp()) // STEP_SECONDS


def seconds_left_in_step(at: datetime) -> int:
    """How long the code of `at` stays current (shown by the demo phone page)."""
    return STEP_SECONDS - int(at.timestamp()) % STEP_SECONDS


def hotp(key: bytes, counter: int) -> str:
    """RFC 4226 §5.3: HMAC-SHA-1, dynamic truncation, modulo 10^Digit, zero-padded."""
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    binary = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**DIGITS).zfill(DIGITS)


def totp_at(key: bytes, at: datetime) -> str:
    """The code an authenticator shows at `at`."""
    return hotp(key, time_step(at))


def window_step(key: bytes, code: str, at: datetime) -> int | None:
    """The time step of the accepted window (current ±1) that `code` belongs to, or None when
    it is wrong or outside the window; says nothing about replay. Candidates are compared in
    constant time, newest first."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = time_step(at)
    found: int | None = None
    for step in range(current + ACCEPTED_DRIFT_STEPS, current - ACCEPTED_DRIFT_STEPS - 1, -1):
        if hmac.compare_digest(hotp(key, step), code) and found is None:
            found = step
    return found


def already_accepted(step: int, last_accepted_step: int | None) -> bool:
    """A step at or before the last accepted one is a replay (RFC 6238 §5.2)."""
    return last_accepted_step is not None and step <= last_accepted_step


def matching_step(
    key: bytes, code: str, at: datetime, last_accepted_step: int | None
) -> int | None:
    """The time step `code` belongs to, or None when it is wrong, outside ±1 step, or a step
    already accepted (replay)."""
    found = window_step(key, code, at)
    if found is None or already_accepted(found, last_accepted_step):
        return None
    return found
