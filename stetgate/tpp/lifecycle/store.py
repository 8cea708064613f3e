"""The storage ports of the lifecycle, and `EncryptedTokens`, the typed view over them.

A `TokenStore` keeps opaque sealed strings with a version per key: a write names the version
it read (0: "absent") and fails with `VersionConflict` when another writer came first, so a
rotated refresh token is never overwritten by a stale one (OAuth 2.1 §6.1). A `RefreshLock`
serializes the refresh of one PSU across processes (`single_flight`). Stores never see a token
in clear: `EncryptedTokens` seals records before they reach one (`sealing`).

Both ports are synchronous (file locks, psycopg and redis-py block); the async lifecycle calls
them in worker threads, and a script may use them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stetgate.tpp.lifecycle.errors import VersionConflict
from stetgate.tpp.lifecycle.records import StoredRecord, TokenRecord
from stetgate.tpp.lifecycle.sealing import TokenSealer

ABSENT = 0
"""The version of a key that holds nothing: ``put(key, value, ABSENT)`` creates."""


@dataclass(frozen=True)
class Sealed:
    value: str
    version: int


class TokenStore(Protocol):
    def get(self, key: str) -> Sealed | None: ...

    def put(self, key: str, value: str, expected_version: int) -> int:
        """Write if the stored version is ``expected_version`` (`ABSENT` to create); return
        the new version; raise `VersionConflict` otherwise."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the key; False when it held nothing."""
        ...

    def stored_keys(self) -> list[str]: ...


class LockHandle(Protocol):
    def release(self) -> None: ...


class RefreshLock(Protocol):
    def acquire(self, key: str, timeout: float) -> LockHandle:
        """Block until this process holds ``key``'s lock (raise `LockTimeout` after
        ``timeout`` seconds). Held across processes and threads, not re-entrant."""
        ...


class EncryptedTokens:
    """`TokenRecord` values in a `TokenStore`, sealed with the store key as associated data."""

    def __init__(self, store: TokenStore, sealer: TokenSealer) -> None:
        self.store = store
        self._sealer = sealer

    def get(self, key: str) -> StoredRecord | None:
        sealed = self.store.get(key)
        if sealed is None:
            return None
        record = TokenRecord.from_bytes(self._sealer.open(key, sealed.value))
        return StoredRecord(record, sealed.version)

    def put(self, key: str, record: TokenRecord, expected_version: int) -> StoredRecord:
        version = self.store.put(key, self._sealer.seal(key, record.to_bytes()), expected_version)
        return StoredRecord(record, version)

    def save_authorization(self, key: str, record: TokenRecord) -> StoredRecord:
        """Store the record of a new authorization (after a code exchange), whatever was
        there: a new SCA supersedes the previous pair
        (docs/decisions.md#one-pair-per-psu-organization-and-role)."""
        while True:
            current = self.store.get(key)
            try:
                return self.put(key, record, current.version if current else ABSENT)
            except VersionConflict:
                continue

    def delete(self, key: str) -> bool:
        return self.store.delete(key)

    def stored_keys(self) -> list[str]:
        return self.store.stored_keys()

    def reseal_all(self) -> int:
        """Re-encrypt under the current key every value sealed with an older one (key
        rotation). A value written meanwhile is skipped: run it again once every process has
        the new keyring. Returns how many changed."""
        changed = 0
        for key in self.store.stored_keys():
            sealed = self.store.get(key)
            if (
                sealed is None
                or self._sealer.key_id_of(sealed.value) == self._sealer.current_key_id
            ):
                continue
            plaintext = self._sealer.open(key, sealed.value)
            try:
                self.store.put(key, self._sealer.seal(key, plaintext), sealed.version)
                changed += 1
            except VersionConflict:
                continue
        return changed
