"""What the TPP expects of the bank where STET v1.4.2 leaves the choice to each bank.

The defaults are STET as BPCE applies it: the same refresh token comes back on refresh
(docs/decisions.md#refresh), four unattended calls a day (RTS Art. 36(5)(b),
docs/decisions.md#unattended-access), a 60-second code (docs/decisions.md#lifetimes). A bank
profile that records another choice fills these fields; the doctor then judges the bank
against what it documents instead of reporting a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stetgate.tpp.bank_profile import BankProfile


class RefreshRotation(StrEnum):
    """What a refresh answers in ``refresh_token`` (RFC 6749 §6 allows both)."""

    SAME = "same"
    """BPCE's current refresh page: the same refresh token, kept for its 90/180 days."""
    ROTATED = "rotated"
    """OAuth 2.1 §6.1 and BPCE's older page: a new refresh token on every refresh."""
    UNKNOWN = "unknown"
    """Not documented: the doctor reports what it saw as information."""


@dataclass(frozen=True)
class DoctorExpectations:
    refresh_rotation: RefreshRotation = RefreshRotation.SAME
    unattended_limit: int | None = 4
    """Calls without ``PSU-IP-Address`` per day, account and endpoint; None: do not probe it
    (the probe uses up the day's allowance of the test PSU's account list)."""
    code_lifetime_seconds: int = 60
    """A replay later than this is refused for age, which proves nothing about single use."""
    psu_ip_address: str = "192.0.2.10"
    """Sent as ``PSU-IP-Address`` on attended calls (RFC 5737 documentation address)."""

    @classmethod
    def from_profile(cls, profile: BankProfile) -> DoctorExpectations:
        """What ``profile`` documents; where it says ``unknown``, the STET/BPCE default above
        for the unattended limit (the RTS figure) and "unknown" for the refresh rotation (the
        doctor then reports what it saw as information, not as a difference)."""
        rotation = {
            "same": RefreshRotation.SAME,
            "rotates": RefreshRotation.ROTATED,
        }.get(profile.tokens.refresh_rotation, RefreshRotation.UNKNOWN)
        limit = profile.unattended.limit_per_account_per_day
        return cls(
            refresh_rotation=rotation,
            unattended_limit=limit if isinstance(limit, int) else 4,
        )
