"""CRLs read from a folder, re-read only when the folder changes.

RFC 5280 §5 CRLs (DER or PEM) are dropped into ``crl_dir`` by whatever fetches them
from the QTSPs (or by the test QTSP, which replaces its file atomically). Parsing
CRLs on every TLS handshake would be wasteful, so the store keeps a parsed
snapshot and looks at the folder (names, sizes, mtimes, inodes — a cheap
``scandir``) at most every ``poll_seconds``. Each content change produces a new
``generation`` number, which the validator uses to drop its cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from asn1crypto import crl as a1crl
from asn1crypto import pem

log = logging.getLogger(__name__)

_SUFFIXES = (".crl", ".der", ".pem")
_Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class CrlInfo:
    """One parsed CRL and the fields the cache window needs (RFC 5280 §5.1.2.4-5)."""

    crl: a1crl.CertificateList
    issuer: object  # asn1crypto Name.hashable
    this_update: datetime
    next_update: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class CrlSnapshot:
    """The CRLs present at one moment; ``generation`` changes when they change."""

    generation: int
    crls: tuple[CrlInfo, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def certificate_lists(self) -> list[a1crl.CertificateList]:
        return [c.crl for c in self.crls]

    def for_issuer(self, issuer_hashable: object) -> list[CrlInfo]:
        return [c for c in self.crls if c.issuer == issuer_hashable]


class CrlStore:
    """A folder of CRL files, polled at most every ``poll_seconds`` (0 = every call)."""

    def __init__(
        self,
        crl_dir: Path,
        *,
        poll_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crl_dir = Path(crl_dir)
        self.poll_seconds = poll_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._signature: _Signature | None = None
        self._snapshot = CrlSnapshot(generation=0)
        self._checked_at: float | None = None

    def snapshot(self) -> CrlSnapshot:
        """The current CRLs, re-reading the folder if it may have changed."""
        if self._fresh():
            return self._snapshot
        with self._lock:
            # Another thread may have re-read the folder while this one waited. The check time
            # is written only once the snapshot is current: a thread that reads it without the
            # lock must never get the previous snapshot (at start-up, no CRL at all, which
            # fails every validation closed).
            if self._fresh():
                return self._snapshot
            signature = self._scan()
            if signature != self._signature:
                self._snapshot = self._load(signature, self._snapshot.generation + 1)
                self._signature = signature
            self._checked_at = self._monotonic()
            return self._snapshot

    def _fresh(self) -> bool:
        checked = self._checked_at
        return checked is not None and self._monotonic() - checked < self.poll_seconds

    def refresh(self) -> CrlSnapshot:
        """Look at the folder now, whatever ``poll_seconds`` says."""
        self._checked_at = None
        return self.snapshot()

    def _scan(self) -> _Signature:
        entries: list[tuple[str, int, int, int]] = []
        try:
            with os.scandir(self.crl_dir) as it:
                for entry in it:
                    if entry.name.startswith(".") or not entry.name.endswith(_SUFFIXES):
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # replaced while scanning; the next poll sees it
                    entries.append((entry.name, st.st_mtime_ns, st.st_size, st.st_ino))
        except FileNotFoundError:
            return ()
        return tuple(sorted(entries))

    def _load(self, signature: _Signature, generation: int) -> CrlSnapshot:
        infos: list[CrlInfo] = []
        problems: list[str] = []
        for name, *_ in signature:
            path = self.crl_dir / name
            try:
                infos.extend(parse_crl_file(path.read_bytes(), source=str(path)))
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: {exc}")
                log.warning("ignoring unreadable CRL file %s: %s", path, exc)
        return CrlSnapshot(generation=generation, crls=tuple(infos), problems=tuple(problems))


def parse_crl_file(data: bytes, *, source: str = "<bytes>") -> list[CrlInfo]:
    """Parse a DER CRL or a PEM file with one or more ``X509 CRL`` blocks."""
    try:
        if b"-----BEGIN" in data[:256]:
            ders = [der for kind, _h, der in pem.unarmor(data, multiple=True) if kind == "X509 CRL"]
        else:
            ders = [data]
        out: list[CrlInfo] = []
        for der in ders:
            cl = a1crl.CertificateList.load(der, strict=True)
            tbs = cl["tbs_cert_list"]
            next_update = tbs["next_update"].native
            out.append(
                CrlInfo(
                    crl=cl,
                    issuer=cl.issuer.hashable,
                    this_update=tbs["this_update"].native,
                    next_update=next_update,
                    source=source,
                )
            )
    except Exception as exc:
        raise ValueError(f"not a CRL: {exc}") from exc
    if not out:
        raise ValueError("no X509 CRL block")
    return out


__all__ = ["CrlInfo", "CrlSnapshot", "CrlStore", "parse_crl_file"]
