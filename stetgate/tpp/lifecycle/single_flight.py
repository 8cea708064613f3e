"""One refresh per PSU and expiry, however many tasks and processes need the token.

Why: a rotating bank answers a second refresh with the replaced token by revoking the whole
authorization (OAuth 2.1 §6.1; stetgate with ``rotate_refresh_tokens``, BPCE's older refresh
page), and even a non-rotating one counts each grant. So the refresh of a PSU is serialized:

1. read; a fresh record is returned at once (the common path takes no lock);
2. an in-process lock per PSU lets one task of this process go on; the others wait there;
3. that task takes the cross-process `RefreshLock` (flock, advisory lock, Redis lease) and
   **reads again**: another process may have refreshed while it waited;
4. still expiring: one refresh grant, and a compare-and-set write of what the bank returned
   (docs/decisions.md#refresh: store the refresh token you receive);
5. the waiters read the stored result.

``invalid_grant`` (or an SCA window known to be closed) is stored as the record's end, so the
waiters and every later caller raise `ReauthenticationRequired` without asking the bank again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread

from stetgate.clock import Clock
from stetgate.tpp.client import BankError
from stetgate.tpp.lifecycle.bank_access import TokenRefreshing
from stetgate.tpp.lifecycle.errors import (
    ReauthenticationReason,
    ReauthenticationRequired,
    VersionConflict,
)
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.records import StoredRecord, TokenRecord
from stetgate.tpp.lifecycle.store import EncryptedTokens, RefreshLock

DEFAULT_MARGIN_SECONDS = 60
DEFAULT_LOCK_TIMEOUT = 30.0


class _KeyedLocks:
    """An `anyio.Lock` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (anyio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class SingleFlightRefresher:
    """Fresh tokens for the PSUs of one bank (``bank``: the name records carry)."""

    def __init__(
        self,
        bank: str,
        tokens: EncryptedTokens,
        lock: RefreshLock,
        client: TokenRefreshing,
        clock: Clock,
        *,
        limits: BankLimits,
        margin_seconds: int = DEFAULT_MARGIN_SECONDS,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.bank = bank
        self.limits = limits
        self._tokens = tokens
        self._lock = lock
        self._client = client
        self._clock = clock
        self._margin = margin_seconds
        self._lock_timeout = lock_timeout
        self._local = _KeyedLocks()

    async def fresh(self, key: str) -> TokenRecord:
        """The PSU's record with an access token valid ``margin_seconds`` more, refreshed and
        stored first if needed. Raises `ReauthenticationRequired`; a transient bank error
        (5xx, network) propagates and changes nothing."""
        stored = await self._settled(key)
        if stored is not None:
            return stored.record
        async with self._local.hold(key):
            stored = await self._settled(key)
            if stored is not None:
                return stored.record
            handle = await anyio.to_thread.run_sync(self._lock.acquire, key, self._lock_timeout)
            try:
                stored = await self._settled(key)
                if stored is not None:
                    return stored.record
                return await self._refresh(key)
            finally:
                await anyio.to_thread.run_sync(handle.release)

    async def _read(self, key: str) -> StoredRecord:
        stored = await anyio.to_thread.run_sync(self._tokens.get, key)
        if stored is None:
            raise ReauthenticationRequired(self.bank, key, "not_stored", "no tokens stored")
        if stored.record.bank != self.bank:
            raise ValueError(f"{key!r} holds tokens of {stored.record.bank}, not {self.bank}")
        if stored.record.ended is not None:
            record = stored.record
            raise ReauthenticationRequired(self.bank, key, stored.record.ended, record.ended_detail)
        return stored

    async def _settled(self, key: str) -> StoredRecord | None:
        """The stored record if it needs no refresh, else None (raising if it is over)."""
        stored = await self._read(key)
        if stored.record.tokens.needs_refresh(self._clock.now(), self._margin):
            return None
        return stored

    async def _refresh(self, key: str) -> TokenRecord:
        stored = await self._read(key)
        record, now = stored.record, self._clock.now()
        if record.sca_closed(now, self.limits.sca_validity_days):
            detail = f"the last SCA is older than {self.limits.sca_validity_days} days"
            await self._end(key, stored, "sca_expired", detail)
            raise ReauthenticationRequired(self.bank, key, "sca_expired", detail)
        if not record.tokens.refresh_token:
            raise ReauthenticationRequired(self.bank, key, "no_refresh_token")
        try:
            tokens = await self._client.refresh(record.tokens)
        except BankError as exc:
            if exc.oauth_error != "invalid_grant":
                raise
            detail = str(exc)
            await self._end(key, stored, "refused_by_bank", detail)
            raise ReauthenticationRequired(self.bank, key, "refused_by_bank", detail) from None
        try:
            written = await anyio.to_thread.run_sync(
                self._tokens.put, key, record.refreshed(tokens), stored.version
            )
        except VersionConflict:
            # Written without the lock meanwhile: only a new authorization does that, and
            # its pair supersedes the one just refreshed.
            return (await self._read(key)).record
        return written.record

    async def _end(
        self, key: str, stored: StoredRecord, reason: ReauthenticationReason, detail: str
    ) -> None:
        with contextlib.suppress(VersionConflict):  # a new authorization arrived: keep it
            await anyio.to_thread.run_sync(
                self._tokens.put, key, stored.record.ending(reason, detail), stored.version
            )
