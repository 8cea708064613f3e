"""The revocation fetcher: keeps the CRL folder fresh by itself, one fetcher per instance.

What it fetches (`stetgate.eidas.revocation_fetch` says how each piece is checked):

* the CRL of every distribution point named by a trusted intermediate CA (signed by the anchor
  that issued it) and by every certificate the validator has seen that a trusted CA issued;
* an OCSP response (RFC 6960) for every such certificate whose AIA names a responder.

Certificates the validator met are recorded in ``crl_dir/.wanted/`` (one DER file each, written
once, on validation misses only), so every worker contributes what it saw and a restart keeps
the list; entries past their notAfter are deleted. A file there is used only if a CA of the
trust folder directly issued it: certificates cannot make the fetcher call arbitrary URLs.

When: at ``min(fetched + refresh, nextUpdate - margin)`` (`next_fetch`), after a failure
``retry`` later; a CRL older than the file already stored is not written (no rollback, RFC 5280
§5.2.3), identical bytes are not rewritten (a rewrite drops every worker's validation cache).

Who: each worker runs a fetcher thread, and the one holding ``fcntl.flock`` on
``crl_dir/.fetcher.lock`` fetches; the others try the lock every ``poll_seconds`` and otherwise
only read the folder through their `CrlStore`. A dead holder's lock is freed by the kernel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Literal

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from stetgate.clock import Clock
from stetgate.eidas.files import atomic_write
from stetgate.eidas.revocation_fetch import (
    FetchLimits,
    RevocationFetchError,
    crl_urls,
    download,
    ocsp_request,
    ocsp_urls,
    verified_crl,
    verified_ocsp,
)
from stetgate.eidas.trust import TrustFolder

log = logging.getLogger(__name__)

LOCK_NAME = ".fetcher.lock"
WANTED_DIR = ".wanted"
MAX_WANTED = 10_000
"""Certificates remembered for fetching; past it new ones are not recorded (a bound on disk use
if a trusted CA issued very many certificates that all call)."""


@dataclass(frozen=True, slots=True)
class FetchSchedule:
    refresh: timedelta
    """Longest time between two fetches of one source (setting ``crl_refresh_seconds``)."""
    margin: timedelta
    """Fetch this long before nextUpdate at the latest."""
    retry: timedelta
    """Wait after a failed fetch (or when the data is already within ``margin``)."""


def next_fetch(
    fetched_at: datetime, next_update: datetime | None, schedule: FetchSchedule
) -> datetime:
    """When to fetch a source again after a successful fetch at ``fetched_at``: on the refresh
    interval, but early enough that a new CRL is in place before the current one's nextUpdate
    (RFC 5280 §5.1.2.5). Data already inside the margin is retried after ``retry``."""
    due = fetched_at + schedule.refresh
    if next_update is not None:
        before = next_update - schedule.margin
        due = min(due, before if before > fetched_at else fetched_at + schedule.retry)
    return due


@dataclass(slots=True)
class _Source:
    kind: Literal["crl", "ocsp"]
    url: str
    issuer: x509.Certificate
    file_name: str
    cert: x509.Certificate | None = None
    due: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = field(default=None)


@dataclass(frozen=True, slots=True)
class FetchStatus:
    """One source as the fetcher last saw it (for monitoring)."""

    kind: str
    url: str
    file_name: str
    last_success: datetime | None
    last_error: str | None
    next_fetch: datetime | None


class FetcherLock:
    """An exclusive, non-blocking ``flock`` held for as long as this object keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def try_acquire(self) -> bool:
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


class RevocationFetcher:
    """Fetches CRLs and OCSP responses into ``crl_dir`` (see the module docstring)."""

    def __init__(
        self,
        crl_dir: Path,
        trust: TrustFolder,
        clock: Clock,
        schedule: FetchSchedule,
        limits: FetchLimits,
        *,
        poll_seconds: float = 2.0,
        verify: str | bool = True,
    ) -> None:
        self.crl_dir = Path(crl_dir)
        self.trust = trust
        self.clock = clock
        self.schedule = schedule
        self.limits = limits
        self.poll_seconds = max(poll_seconds, 0.05)
        self.lock = FetcherLock(self.crl_dir / LOCK_NAME)
        self._client = httpx.Client(verify=verify, follow_redirects=False)
        self._sources: dict[str, _Source] = {}
        self._wanted: dict[str, x509.Certificate | None] = {}
        self._recorded: set[str] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    # ------------------------------------------------------------------ recording

    def want(self, der: bytes) -> None:
        """Record a certificate the validator met (a validation miss, not the hot path)."""
        name = hashlib.sha256(der).hexdigest()
        if name in self._recorded:
            return
        self._recorded.add(name)
        folder = self.crl_dir / WANTED_DIR
        path = folder / f"{name}.der"
        try:
            if path.exists():
                return
            if folder.is_dir() and sum(1 for _ in os.scandir(folder)) >= MAX_WANTED:
                log.warning("revocation fetcher: %d certificates recorded, not more", MAX_WANTED)
                return
            atomic_write(path, der)
        except OSError as exc:
            log.warning("revocation fetcher: cannot record a certificate: %s", exc)
            return
        self._wake.set()

    def fetch_for(self, der: bytes) -> bool:
        """Fetch, now and in the calling thread, the CRL or OCSP response of one certificate
        whose data is missing (the validator calls it on a miss, off the event loop); True
        when something fresh was stored. Any worker may do this, lock or no lock: it is one
        certificate's data, once, and the file is written atomically like the periodic
        fetcher's. Only a certificate issued directly by a trusted CA gets a request (its
        URLs are then the QTSP's, not the TPP's choice)."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return False
        _generation, store = self.trust.current()
        cas = [x509.load_der_x509_certificate(c.dump()) for c in store.certificates]
        issuer = _issuer_of(cert, cas)
        if issuer is None:
            return False
        self.want(der)
        sources: dict[str, _Source] = {}
        self._add_sources(sources, cert, issuer)
        now = self.clock.now()
        stored = False
        for source in sources.values():
            before = _read(self.crl_dir / source.file_name)
            try:
                fetch = self._fetch_crl if source.kind == "crl" else self._fetch_ocsp
                fetch(source, now)
            except (RevocationFetchError, OSError) as exc:
                log.warning("revocation fetcher (on demand): %s", exc)
                continue
            stored = stored or _read(self.crl_dir / source.file_name) != before
        return stored

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Run `run_once` on a daemon thread until `close`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, name="stetgate-revocation-fetcher", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.limits.timeout_seconds + 5)
            self._thread = None
        self.lock.release()
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.run_once()
            except Exception:
                log.exception("revocation fetcher: unexpected error")
                wait = self.poll_seconds
            self._wake.wait(wait)
            self._wake.clear()

    def run_once(self) -> float:
        """Fetch what is due if this process holds the lock; seconds until the next look."""
        if not self.lock.try_acquire():
            return self.poll_seconds
        with self._mutex:
            now = self.clock.now()
            self._collect(now)
            for source in list(self._sources.values()):
                if self._stop.is_set():
                    break
                if source.due is None or source.due <= now:
                    self._fetch(source, now)
                    now = self.clock.now()
            dues = [s.due for s in self._sources.values() if s.due is not None]
        until = min(dues, default=now + timedelta(seconds=self.poll_seconds)) - now
        return min(max(until.total_seconds(), 0.0), self.poll_seconds)

    def status(self) -> list[FetchStatus]:
        """Every source with its last success, last error and next fetch (monitoring)."""
        return [
            FetchStatus(s.kind, s.url, s.file_name, s.last_success, s.last_error, s.due)
            for s in list(self._sources.values())
        ]

    # ------------------------------------------------------------------ sources

    def _collect(self, now: datetime) -> None:
        _generation, store = self.trust.current()
        cas = [x509.load_der_x509_certificate(c.dump()) for c in store.certificates]
        wanted: dict[str, _Source] = {}
        for ca in cas:
            if ca.issuer == ca.subject:
                continue
            issuer = _issuer_of(ca, cas)
            if issuer is not None:
                self._add_sources(wanted, ca, issuer)
        for cert in self._wanted_certificates(now):
            issuer = _issuer_of(cert, cas)
            if issuer is not None:
                self._add_sources(wanted, cert, issuer)
        for key in list(self._sources):
            if key not in wanted:
                del self._sources[key]
        for key, source in wanted.items():
            self._sources.setdefault(key, source)

    def _add_sources(
        self, into: dict[str, _Source], cert: x509.Certificate, issuer: x509.Certificate
    ) -> None:
        for url in crl_urls(cert):
            name = f"fetched-{hashlib.sha256(url.encode()).hexdigest()[:24]}.crl"
            into.setdefault(f"crl:{url}", _Source("crl", url, issuer, name))
        urls = ocsp_urls(cert)
        if urls:
            digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
            name = f"ocsp-{digest[:32]}.ocsp"
            into.setdefault(f"ocsp:{digest}", _Source("ocsp", urls[0], issuer, name, cert=cert))

    def _wanted_certificates(self, now: datetime) -> list[x509.Certificate]:
        folder = self.crl_dir / WANTED_DIR
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".der"))
        except FileNotFoundError:
            return []
        out: list[x509.Certificate] = []
        for name in names:
            if name not in self._wanted:
                try:
                    der = (folder / name).read_bytes()
                    self._wanted[name] = x509.load_der_x509_certificate(der)
                except (OSError, ValueError):
                    self._wanted[name] = None
            cert = self._wanted[name]
            if cert is None or cert.not_valid_after_utc < now:
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
                self._wanted.pop(name, None)
                continue
            out.append(cert)
        return out

    # ------------------------------------------------------------------ fetching

    def _fetch(self, source: _Source, now: datetime) -> None:
        try:
            fetch = self._fetch_crl if source.kind == "crl" else self._fetch_ocsp
            next_update = fetch(source, now)
        except (RevocationFetchError, OSError) as exc:
            source.last_error = str(exc)
            source.due = now + self.schedule.retry
            log.warning("revocation fetcher: %s", exc)
            return
        source.last_error = None
        source.last_success = now
        source.due = next_fetch(now, next_update, self.schedule)

    def _fetch_crl(self, source: _Source, now: datetime) -> datetime | None:
        data = download(self._client, source.url, self.limits)
        crl = verified_crl(data, source.issuer, now, source.url)
        der = crl.public_bytes(serialization.Encoding.DER)
        self._store(source, der, crl.last_update_utc, _crl_this_update)
        return crl.next_update_utc

    def _fetch_ocsp(self, source: _Source, now: datetime) -> datetime | None:
        assert source.cert is not None
        data = download(
            self._client,
            source.url,
            self.limits,
            body=ocsp_request(source.cert, source.issuer),
            content_type="application/ocsp-request",
        )
        response = verified_ocsp(data, source.cert, source.issuer, now, source.url)
        self._store(source, data, response.this_update_utc, _ocsp_this_update)
        return response.next_update_utc

    def _store(
        self,
        source: _Source,
        der: bytes,
        this_update: datetime,
        stored_this_update: Callable[[bytes], datetime],
    ) -> None:
        """Write ``der`` unless the same bytes are there already (a rewrite drops every
        worker's validation cache) or the stored data is newer (no rollback)."""
        path = self.crl_dir / source.file_name
        current = _read(path)
        if current == der:
            return
        if current is not None:
            with contextlib.suppress(ValueError):
                if stored_this_update(current) > this_update:
                    raise RevocationFetchError(
                        f"{source.url}: {source.kind} data older than the one stored "
                        f"(thisUpdate {this_update}), kept the stored one"
                    )
        atomic_write(path, der)
        log.info("revocation fetcher: %s from %s stored", source.kind, source.url)


def _crl_this_update(der: bytes) -> datetime:
    return x509.load_der_x509_crl(der).last_update_utc


def _ocsp_this_update(der: bytes) -> datetime:
    return ocsp.load_der_ocsp_response(der).this_update_utc


def _issuer_of(cert: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate | None:
    """The trusted CA that directly issued ``cert`` (name and signature), or None."""
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


__all__ = [
    "LOCK_NAME",
    "WANTED_DIR",
    "FetchSchedule",
    "FetchStatus",
    "FetcherLock",
    "RevocationFetcher",
    "next_fetch",
]
