"""The PSU directory port: what the authorization pages need from the bank about its
customers — find a PSU, check its knowledge and possession factors, count failures, block.

A bank implements `PsuDirectory` against its own customer store; stetgate's built-in
implementation over the ``psus`` table is `stetgate.demo.psu_directory.DatabasePsuDirectory`.
Every implementation must keep these rules:

- an unknown PSU id costs the same as a wrong password, so neither the answer nor the timing
  tells whether an id exists (PSD2 RTS (EU) 2018/389 Art. 4(3)(a));
- ``max_failed_attempts`` consecutive failed identification or SCA attempts block the PSU
  (RTS Art. 4(3)(b)); the count restarts after a block and after a completed SCA, and counting
  is atomic so concurrent attempts cannot slip past the limit;
- a one-time code is accepted once (RFC 6238 §5.2); a second use is answered
  `TotpCheck.REUSED`, not `TotpCheck.WRONG`, so the page can tell the PSU to wait for the next
  code (see `TotpCheck` for why that is no oracle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

PSU_ID_PATTERN = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class Psu:
    psu_id: str
    display_name: str
    has_totp: bool
    app_sca: bool
    failed_attempts: int
    blocked_until: datetime | None
    created_at: datetime

    def blocked_at(self, now: datetime) -> bool:
        return self.blocked_until is not None and self.blocked_until > now


@dataclass(frozen=True)
class FailedAttempt:
    """Result of counting one failed attempt: the consecutive count after it, and the end of
    the block this attempt caused (None when the PSU is not blocked by it)."""

    consecutive_failures: int
    blocked_until: datetime | None


class TotpCheck(Enum):
    """The directory's answer about a one-time code (`PsuDirectory.check_totp`).

    ``REUSED`` is a code of the accepted window (current step ±1) whose time step, or a later
    one, was already accepted (RFC 6238 §5.2: "MUST NOT accept the second attempt"). It is
    refused and counts as a failed attempt exactly like ``WRONG``; only the message differs
    ("already used, wait for the next one"), because a PSU who double-submits or types the code
    it has just used otherwise burns its attempts retyping the same code. Telling it apart is
    no oracle: a reused code is only known to someone who saw a valid code (on the PSU's
    screen, in a form replay), and the answer teaches that person nothing about any *other*
    code — the next step's code is an HMAC of a secret they do not have (RFC 4226 §5.3), and
    the used one can never be accepted again. A guesser trying codes at random learns nothing
    either: the chance that a guess is the code just used is the same 10^-6 as hitting the
    current one, and both still cost an attempt towards the block (RTS (EU) 2018/389
    Art. 4(3)(b)).

    Members are truthy only for ``ACCEPTED``, so a caller written for the former ``bool``
    answer (``if directory.check_totp(...)``) keeps its meaning.
    """

    ACCEPTED = "accepted"
    WRONG = "wrong"
    """Not the PSU's code in the window (also: unknown id, no TOTP enrolled)."""
    REUSED = "reused"

    def __bool__(self) -> bool:
        return self is TotpCheck.ACCEPTED


def totp_check(answer: TotpCheck | bool) -> TotpCheck:
    """A directory's answer as a `TotpCheck`: a directory written for the earlier port answers
    ``True``/``False`` (accepted / wrong; it cannot tell a reused code apart)."""
    if isinstance(answer, TotpCheck):
        return answer
    return TotpCheck.ACCEPTED if answer else TotpCheck.WRONG


class PsuDirectory(Protocol):
    """What the authorization pages need from the bank about its customers."""

    def find(self, psu_id: str) -> Psu | None:
        """The PSU, or None when the id is unknown."""
        ...

    def check_password(self, psu_id: str, password: str) -> bool:
        """True when the password is the PSU's. Must cost the same for an unknown id."""
        ...

    def check_totp(self, psu_id: str, code: str, now: datetime) -> TotpCheck | bool:
        """``ACCEPTED`` when `code` is the PSU's current one-time code (±1 step) and its step
        was never accepted before (accepting it records the step); ``REUSED`` when it is a
        code of that window whose step, or a later one, was already accepted; else ``WRONG``.
        A ``bool`` (True = accepted) is still understood, from directories written before
        `TotpCheck` — their reused codes read as wrong ones (`totp_check`)."""
        ...

    def record_failed_attempt(self, psu_id: str, now: datetime) -> FailedAttempt:
        """Count a failed identification or SCA attempt; block the PSU at the limit."""
        ...

    def record_successful_authentication(self, psu_id: str) -> None:
        """A completed SCA: the consecutive-failure count restarts."""
        ...

    def block(self, psu_id: str, until: datetime) -> bool: ...

    def unblock(self, psu_id: str) -> bool:
        """Lift a block and restart the count; False when the id is unknown."""
        ...

    def enrol_totp(self, psu_id: str, secret: str) -> None:
        """Set the PSU's TOTP secret (base32); refusal of replayed steps starts afresh."""
        ...

    def enrol_app(self, psu_id: str, enabled: bool) -> None:
        """Enrol (or remove) the decoupled "confirm in the banking app" method."""
        ...
