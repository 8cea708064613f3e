"""What the lifecycle keeps per PSU: the tokens, when the PSU last authenticated, and whether
the authorization is over.

The token response carries no SCA time (RFC 6749 §5.1 with BPCE's fields,
docs/decisions.md#opaque-secrets), so the record takes it from the code exchange: the SCA
happened at most a code lifetime (60 s) before. A refresh keeps it: only a new authorization
with SCA moves it (docs/decisions.md#refresh: the SCA age is checked at refresh).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from stetgate.tpp.client import TokenSet
from stetgate.tpp.lifecycle.errors import ReauthenticationReason


@dataclass(frozen=True)
class TokenRecord:
    """One PSU's authorization at one bank.

    ``ended`` (a `ReauthenticationRequired` reason) and ``ended_detail`` are set once the bank
    refused the refresh token or the SCA window closed: the record stays, so every process
    learns it without asking the bank again, until a new authorization replaces it."""

    bank: str
    tokens: TokenSet
    authenticated_at: datetime
    ended: ReauthenticationReason | None = None
    ended_detail: str = ""

    @classmethod
    def after_exchange(cls, bank: str, tokens: TokenSet) -> TokenRecord:
        """The record of a fresh code exchange: the SCA is as old as the tokens."""
        return cls(bank, tokens, tokens.obtained_at)

    def sca_expires_at(self, sca_validity_days: int) -> datetime:
        return self.authenticated_at + timedelta(days=sca_validity_days)

    def days_left(self, now: datetime, sca_validity_days: int) -> int:
        """Whole days before the bank will refuse the refresh token (0 when it is today or
        already past): what an aggregator shows when asking the PSU to authenticate again."""
        remaining = self.sca_expires_at(sca_validity_days) - now
        return max(0, remaining.days)

    def sca_closed(self, now: datetime, sca_validity_days: int) -> bool:
        return now >= self.sca_expires_at(sca_validity_days)

    def refreshed(self, tokens: TokenSet) -> TokenRecord:
        return replace(self, tokens=tokens)

    def ending(self, reason: ReauthenticationReason, detail: str) -> TokenRecord:
        return replace(self, ended=reason, ended_detail=detail)

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "bank": self.bank,
            "tokens": self.tokens.to_json(),
            "authenticated_at": self.authenticated_at.isoformat(),
            "ended": self.ended,
            "ended_detail": self.ended_detail,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> TokenRecord:
        data = json.loads(raw)
        return cls(
            bank=str(data["bank"]),
            tokens=TokenSet.from_json(data["tokens"]),
            authenticated_at=datetime.fromisoformat(data["authenticated_at"]),
            ended=data.get("ended"),
            ended_detail=str(data.get("ended_detail", "")),
        )


@dataclass(frozen=True)
class StoredRecord:
    """A record with the store version it was read at (the compare-and-set precondition)."""

    record: TokenRecord
    version: int
