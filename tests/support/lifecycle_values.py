"""Values shared by the TPP lifecycle tests: a keyring, records, and a bank double that
counts refresh grants and calls, for the rules that need no bank (the real bank is in
tests/integration/test_tpp_lifecycle.py). Its ``pause`` stands for the bank's latency, so that
concurrent tasks overlap as they do in production; no rule waits on real time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from stetgate.clock import FrozenClock
from stetgate.tpp.client import BankError, TokenSet
from stetgate.tpp.lifecycle.records import TokenRecord
from stetgate.tpp.lifecycle.sealing import Keyring, TokenSealer, new_key_line

BANK = "https://bank.test"
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def keyring(*ids: str) -> Keyring:
    return Keyring.parse("\n".join(new_key_line(i) for i in ids or ("k1",)))


def sealer(*ids: str) -> TokenSealer:
    return TokenSealer(keyring(*ids))


def tokens(at: datetime, n: int = 0, *, refresh: str | None = "refresh-secret-0") -> TokenSet:
    return TokenSet(f"access-secret-{n}", refresh, 3600, "aisp", at)


def record(at: datetime = START, **kwargs: Any) -> TokenRecord:
    return TokenRecord(BANK, tokens(at, **kwargs), at)


@dataclass
class CountingBank:
    """`BankAccess` answering like a BPCE-style bank: a refresh returns a new access token
    (optionally rotating the refresh token), refuses a replaced or refused token with
    ``invalid_grant``, and answers GETs; it records every call with the clock's time."""

    clock: FrozenClock
    rotate: bool = False
    refuse_with: str | None = None
    fail_with_status: int | None = None
    pause: float = 0.0
    refreshes: list[str] = field(default_factory=list)
    calls: list[tuple[datetime, str, dict[str, str]]] = field(default_factory=list)
    live_refresh: str = "refresh-secret-0"
    answer_status: int = 200

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        assert tokens.refresh_token is not None
        self.refreshes.append(tokens.refresh_token)
        if self.pause:
            await anyio.sleep(self.pause)  # lets other tasks run while this one is "at the bank"
        if self.fail_with_status:
            raise BankError(self.fail_with_status, {}, "HTTP 503: down")
        if self.refuse_with or tokens.refresh_token != self.live_refresh:
            reason = self.refuse_with or "the refresh token was already replaced"
            body = {"error": "invalid_grant", "error_description": reason}
            raise BankError(400, body, f"HTTP 400: {reason}")
        n = len(self.refreshes)
        if self.rotate:
            self.live_refresh = f"refresh-secret-{n}"
        return TokenSet.from_response(
            {
                "access_token": f"access-secret-{n}",
                "refresh_token": self.live_refresh,
                "expires_in": 3600,
                "scope": "aisp",
            },
            tokens,
            obtained_at=self.clock.now(),
        )

    async def api(
        self,
        method: str,
        path: str,
        tokens: TokenSet,
        *,
        psu_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        assert not tokens.needs_refresh(self.clock.now(), 0), "called with an expired token"
        self.calls.append((self.clock.now(), path, dict(psu_headers or {})))
        if self.answer_status != 200:
            raise BankError(self.answer_status, {}, f"HTTP {self.answer_status}")
        return {"path": path}
