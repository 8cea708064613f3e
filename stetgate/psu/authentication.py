"""Identification (PSU id + password), the knowledge factor, as one decision.

RTS (EU) 2018/389 Art. 4(3): failed attempts are counted and block the PSU at the limit
(a), and a failure never says which element was wrong (b) — so an unknown id, a wrong password
and any password on a blocked PSU all give the same `FAILED` answer after the same argon2 work.

During a block the password is not looked at at all. An outside attack run found the earlier
rule — "the right password on a blocked PSU gets the blocked page" — to be an oracle: attempts
during a block were free and not counted, so ~25 guesses/s could run with the right one
recognisable. Now every attempt during a block is answered `FAILED` whatever was typed, and is
counted: ``max_failed_auth_attempts`` more attempts during a block start it again from that
moment (docs/decisions.md#failed-attempts-and-timeouts). The PSU is alerted by the attempt that
causes a block (Art. 4(3), closing sentence), which shows the blocked page; the generic failure
text says that repeated failures block access for a while.

`identify` is blocking (the directory port, argon2): the login page runs it on a thread, under
the worker's limit of concurrent password checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from stetgate.bank.psus import Psu, PsuDirectory


class Verdict(Enum):
    IDENTIFIED = "identified"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Identification:
    verdict: Verdict
    psu: Psu | None = None
    blocked_until: datetime | None = None
    just_blocked: bool = False
    """True when this very attempt reached the failure limit (an audit ``psu_blocked``)."""


def identify(directory: PsuDirectory, psu_id: str, password: str, now: datetime) -> Identification:
    """Check the knowledge factor; counts the failure on a known, unblocked PSU."""
    psu = directory.find(psu_id)
    password_ok = directory.check_password(psu_id, password)  # always: same work, same time
    if psu is None:
        return Identification(Verdict.FAILED)
    if psu.blocked_at(now):
        attempt = directory.record_failed_attempt(psu.psu_id, now)
        if attempt.blocked_until is not None:  # the block starts again from now
            return Identification(Verdict.BLOCKED, psu, attempt.blocked_until, just_blocked=True)
        return Identification(Verdict.FAILED, psu)
    if not password_ok:
        attempt = directory.record_failed_attempt(psu.psu_id, now)
        if attempt.blocked_until is not None:
            return Identification(Verdict.BLOCKED, psu, attempt.blocked_until, just_blocked=True)
        return Identification(Verdict.FAILED, psu)
    return Identification(Verdict.IDENTIFIED, psu)
