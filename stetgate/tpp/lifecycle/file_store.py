"""The default store: one JSON file of sealed values, for one process or a few on one host.

- writes take an exclusive ``flock`` on ``<file>.lock`` for the read-compare-write, then
  replace the file atomically (a temporary file renamed over it, mode 0600 in a 0700 folder,
  `stetgate.tpp.client.write_private_bytes`); reads need no lock: a rename is atomic;
- the refresh lock of a PSU is an ``flock`` on its own file in ``<file>.locks/`` (named by a
  SHA-256 of the store key, so no PSU identifier appears in a file name). ``flock`` belongs to
  an open file description, so it excludes threads of one process as well as processes, and
  the kernel drops it when a process dies: no stale lock after a crash.

``flock`` cannot time out, so acquiring polls a non-blocking attempt; the file store is for
a handful of processes on one machine — beyond that use PostgreSQL or Redis.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stetgate.tpp.client import write_private_bytes
from stetgate.tpp.lifecycle.errors import LockTimeout, VersionConflict
from stetgate.tpp.lifecycle.store import ABSENT, Sealed

POLL_SECONDS = 0.005
POLL_MAX_SECONDS = 0.05


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _open_lock_file(path: Path) -> int:
    _private_dir(path.parent)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def flock_within(path: Path, timeout: float) -> int:
    """An open descriptor of ``path`` holding an exclusive flock, or `LockTimeout`."""
    fd = _open_lock_file(path)
    deadline = time.monotonic() + timeout
    pause = POLL_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(f"lock {path.name} still held after {timeout} s") from None
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_SECONDS)


class _FlockHandle:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class FileTokenStore:
    """`TokenStore` and `RefreshLock` over one file (``tokens.sealed.json`` by default in the
    kit's state folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._write_lock = path.with_name(f"{path.name}.lock")
        self._lock_dir = path.with_name(f"{path.name}.locks")

    def _entries(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        entries: dict[str, Any] = data["entries"]
        return entries

    @contextmanager
    def _writing(self) -> Iterator[dict[str, Any]]:
        fd = flock_within(self._write_lock, timeout=30.0)
        try:
            entries = self._entries()
            yield entries
            payload = {"format": 1, "entries": entries}
            write_private_bytes(self.path, json.dumps(payload, indent=1).encode())
        finally:
            _FlockHandle(fd).release()

    def get(self, key: str) -> Sealed | None:
        entry = self._entries().get(key)
        return Sealed(entry["value"], int(entry["version"])) if entry else None

    def put(self, key: str, value: str, expected_version: int) -> int:
        with self._writing() as entries:
            entry = entries.get(key)
            found = int(entry["version"]) if entry else ABSENT
            if found != expected_version:
                raise VersionConflict(f"version {found}, expected {expected_version}")
            entries[key] = {"version": found + 1, "value": value}
            return found + 1

    def delete(self, key: str) -> bool:
        with self._writing() as entries:
            return entries.pop(key, None) is not None

    def stored_keys(self) -> list[str]:
        return sorted(self._entries())

    def acquire(self, key: str, timeout: float) -> _FlockHandle:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return _FlockHandle(flock_within(self._lock_dir / digest, timeout))
