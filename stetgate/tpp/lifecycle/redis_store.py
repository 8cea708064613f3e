"""Sealed tokens in Redis, for many PSUs and processes (redis-py).

Each store key is a hash ``<prefix>t:<store key>`` with ``v`` (version) and ``s`` (sealed);
a write is a Lua script comparing the version and writing in one step, atomic by construction
(Redis runs a script alone).

The refresh lock is ``SET <prefix>l:<store key> <random token> NX PX <lease>`` (the single-
instance pattern of the Redis ``SET`` documentation): released by a script that deletes the key
only while it still holds this holder's token, so a holder whose lease ran out cannot release
its successor's lock. The lease must outlast one refresh (the client's HTTP timeout); if it does
not, the version check of the write still refuses the late writer.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import redis

from stetgate.tpp.lifecycle.errors import LockTimeout, VersionConflict
from stetgate.tpp.lifecycle.store import Sealed

DEFAULT_PREFIX = "stetgate:tpp:"
DEFAULT_LEASE_SECONDS = 30.0
POLL_SECONDS = 0.005
POLL_MAX_SECONDS = 0.05

_PUT = """
local found = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if found ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'v', found + 1, 's', ARGV[2])
return found + 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


class _LeaseHandle:
    def __init__(self, client: redis.Redis, release: Any, name: str, token: str) -> None:
        self._client = client
        self._release = release
        self._name: str | None = name
        self._token = token

    def release(self) -> None:
        if self._name is not None:
            self._release(keys=[self._name], args=[self._token])
            self._name = None


class RedisTokenStore:
    """`TokenStore` and `RefreshLock` in one Redis database, keys under ``prefix``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._lease_ms = int(lease_seconds * 1000)
        self._put = client.register_script(_PUT)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisTokenStore:
        return cls(redis.Redis.from_url(url), **kwargs)

    def _token_name(self, key: str) -> str:
        return f"{self._prefix}t:{key}"

    def get(self, key: str) -> Sealed | None:
        found = self._client.hmget(self._token_name(key), ["v", "s"])
        version, value = found[0], found[1]
        if version is None or value is None:
            return None
        return Sealed(_text(value), int(version))

    def put(self, key: str, value: str, expected_version: int) -> int:
        written = int(self._put(keys=[self._token_name(key)], args=[expected_version, value]))
        if written < 0:
            raise VersionConflict(f"{key!r} is not at version {expected_version}")
        return written

    def delete(self, key: str) -> bool:
        return bool(self._client.delete(self._token_name(key)))

    def stored_keys(self) -> list[str]:
        start = f"{self._prefix}t:"
        pattern = _glob_escape(start) + "*"
        names = self._client.scan_iter(match=pattern, count=500)
        return sorted(_text(name)[len(start) :] for name in names)

    def acquire(self, key: str, timeout: float) -> _LeaseHandle:
        name = f"{self._prefix}l:{key}"
        token = secrets.token_urlsafe(16)
        deadline = time.monotonic() + timeout
        pause = POLL_SECONDS
        while not self._client.set(name, token, nx=True, px=self._lease_ms):
            if time.monotonic() >= deadline:
                raise LockTimeout(f"refresh lock still held after {timeout} s")
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_SECONDS)
        return _LeaseHandle(self._client, self._release, name, token)
