"""What goes wrong keeping tokens: the PSU must come back, or the store refused a write."""

from __future__ import annotations

from typing import Literal

ReauthenticationReason = Literal["sca_expired", "refused_by_bank", "no_refresh_token", "not_stored"]


class ReauthenticationRequired(Exception):
    """Only a new authorization with SCA helps (step 8 of docs/decisions.md#the-cinematic).

    Raised when the bank answers ``invalid_grant`` to the refresh grant (RFC 6749 §5.2: the
    refresh token is expired, revoked, or the PSU's last SCA is older than the bank allows —
    90 days in the STET cinematic, up to 180 under RTS Art. 10a), when the SCA window is known
    to be closed before asking, or when nothing is stored for the PSU. ``reason`` is the code
    an aggregator branches on; ``detail`` is the bank's ``error_description`` or ours. Never
    carries a token."""

    def __init__(
        self, bank: str, psu_key: str, reason: ReauthenticationReason, detail: str = ""
    ) -> None:
        super().__init__(
            f"{bank} {psu_key}: new SCA needed ({reason}){': ' if detail else ''}{detail}"
        )
        self.bank = bank
        self.psu_key = psu_key
        self.reason: ReauthenticationReason = reason
        self.detail = detail


class VersionConflict(Exception):
    """A compare-and-set write found another version than expected: someone wrote first.

    The caller re-reads; overwriting would lose a refresh token the bank just rotated
    (OAuth 2.1 §6.1: presenting the replaced one revokes the whole authorization)."""


class LockTimeout(Exception):
    """The refresh lock of a PSU stayed held by another process longer than allowed."""


class UndecryptableToken(Exception):
    """A stored value could not be opened: unknown key id, wrong key, tampered, or moved from
    another store key (the store key is authenticated data of the ciphertext)."""
