"""Is this QWAC/QSealC trusted, valid now, unrevoked and fit for its use?

Path validation (RFC 5280 §6) and revocation checking (CRLs, §6.3, and OCSP responses, RFC
6960) are done offline by pyhanko-certvalidator against the trust anchors (a
:class:`~stetgate.eidas.trust.TrustStore`, or a :class:`~stetgate.eidas.trust.TrustFolder`
that reloads) and the revocation folder (:class:`~stetgate.eidas.crl_store.CrlStore`, kept
fresh by `stetgate.eidas.revocation_fetcher`), with ``revocation_mode="require"``. pyhanko
decides revocation from the stored OCSP responses (``ocsps=``) and CRLs alike: a good OCSP
answer for the leaf suffices, a revoked status from either refuses.
Why not ``"hard-fail"``: it only consults CRLs for certificates that *declare* a
CRL distribution point, so a revoked leaf without one was accepted
(docs/decisions.md#revocation-checking-fails-closed). ``"require"`` demands revocation
information for every non-anchor certificate in the path, so a missing or stale CRL fails
closed.

Grace (``grace``, setting ``revocation_grace_seconds``): when revocation data cannot be
refreshed, a bank may choose to accept data up to ``grace`` past its nextUpdate. pyhanko's
freshness check (nextUpdate + ``time_tolerance``) gives exactly that, but the same tolerance
also widens certificate validity, so certificate dates are checked again strictly afterwards.

On top of RFC 5280 the PSD2 profile adds (ETSI TS 119 495 §4-5, EN 319 412-5 §4.2):
a QWAC must be QcType ``web`` with keyUsage digitalSignature and EKU clientAuth;
a QSealC must be QcType ``eseal`` with digitalSignature and/or nonRepudiation and no
particular EKU; both must be qualified (QcCompliance).

Performance: a successful result is cached per (thumbprint, purpose) for the window
in which it cannot change — from the latest notBefore/CRL thisUpdate to the earliest
notAfter/CRL nextUpdate of the path — and the whole cache is dropped when the CRL
folder changes. A hit is a dict lookup; the clock is the ``at`` argument.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args

from asn1crypto import x509 as a1x509
from pyhanko_certvalidator import CertificateValidator as _PathValidator
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath

from stetgate.eidas.crl_store import CrlSnapshot, CrlStore
from stetgate.eidas.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    InvalidCertificateChain,
    InvalidKeyUsage,
    MalformedCertificate,
    RevocationUnavailable,
    UnknownIssuer,
    WrongCertificateType,
)
from stetgate.eidas.model import REQUIRED_QC_TYPE, Psd2Certificate, Purpose
from stetgate.eidas.parse import parse_certificate
from stetgate.eidas.trust import TrustFolder, TrustStore

T = TypeVar("T")
log = logging.getLogger(__name__)

EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
_PURPOSES: tuple[str, ...] = get_args(Purpose)


def check_purpose(
    cert: Psd2Certificate, purpose: Purpose, *, require_qc_compliance: bool = True
) -> None:
    """The PSD2 profile checks that need no chain: QcType, QcCompliance, KU/EKU.

    * QcType (EN 319 412-5 §4.2.3): ``web`` for a QWAC, ``eseal`` for a QSealC
      (ETSI TS 119 495 §4.1) — a QSealC must not open a TLS session and vice versa.
    * QcCompliance (EN 319 412-5 §4.2.1): PSD2 Art. 34 RTS requires *qualified*
      certificates.
    * keyUsage/EKU (RFC 5280 §4.2.1.3, §4.2.1.12): a TLS client key must allow
      digitalSignature and id-kp-clientAuth (EN 319 412-4 §4.3); a seal key
      digitalSignature or nonRepudiation (EN 319 412-5/-3), EKU not required.
    """
    if purpose not in _PURPOSES:
        raise ValueError(f"purpose must be one of {_PURPOSES}, not {purpose!r}")
    label = "QWAC" if purpose == "qwac" else "QSealC"
    wanted = REQUIRED_QC_TYPE[purpose]
    if wanted not in cert.qc_types:
        present = ", ".join(sorted(t.name.lower() for t in cert.qc_types)) or "none"
        raise WrongCertificateType(
            f"a {label} must carry QcType {wanted.name.lower()} ({wanted.value}, "
            f"ETSI EN 319 412-5 §4.2.3); this certificate's QcType: {present}"
        )
    if require_qc_compliance and not cert.qc_compliance:
        raise WrongCertificateType(
            f"the {label} is not a qualified certificate: no QcCompliance statement "
            "(0.4.0.1862.1.1, ETSI EN 319 412-5 §4.2.1)"
        )
    ku = cert.key_usage
    if purpose == "qwac":
        if "digital_signature" not in ku:
            raise InvalidKeyUsage(
                "a QWAC used for TLS client authentication needs keyUsage digitalSignature; "
                f"keyUsage present: {', '.join(sorted(ku)) or 'none'}"
            )
        if EKU_CLIENT_AUTH not in cert.extended_key_usage:
            raise InvalidKeyUsage(
                "a QWAC used for TLS client authentication needs extendedKeyUsage "
                f"clientAuth ({EKU_CLIENT_AUTH}); EKU present: "
                f"{', '.join(sorted(cert.extended_key_usage)) or 'none'}"
            )
    elif not ku & {"digital_signature", "non_repudiation"}:
        raise InvalidKeyUsage(
            "a QSealC used to sign HTTP requests needs keyUsage digitalSignature or "
            f"nonRepudiation; keyUsage present: {', '.join(sorted(ku)) or 'none'}"
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    cert: Psd2Certificate
    valid_from: datetime
    valid_until: datetime
    generation: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Failure:
    error_type: type[CertificateError]
    message: str
    at: datetime
    generation: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _View:
    """What one validation sees: the revocation data and the anchors, and their generations."""

    generation: tuple[int, int]
    snapshot: CrlSnapshot
    trust: TrustStore


FAILURE_TTL = timedelta(seconds=60)
"""How long a refusal is remembered (same CRL set): a TPP that keeps presenting a revoked or
foreign certificate costs a dictionary lookup, not a path validation (~1 ms), per request."""


class _LoopThread:
    """A private event loop on a daemon thread. pyhanko-certvalidator's API is async and
    its sync wrappers call ``asyncio.run``, which fails inside a running loop (an ASGI
    handler); running the coroutine here works from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            with self._lock:
                if self._loop is None:
                    self._loop = asyncio.new_event_loop()
                    threading.Thread(
                        target=self._loop.run_forever, name="stetgate-eidas-validator", daemon=True
                    ).start()
                loop = self._loop
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        return fut.result()

    def close(self) -> None:
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


class CertificateValidator:
    """Validates PSD2 certificates offline against trusted QTSPs and their CRLs.

    Thread-safe: handlers validate on a pool of threads (`stetgate.serving.blocking`). A hit
    is a dict lookup, lock-free. Misses — path validation — run one at a time: asn1crypto
    parses fields lazily and is not thread-safe, and the parsed certificates and CRLs are
    shared between calls (found by the date-shifted CI pass: concurrent first validations of
    one certificate raised ``KeyError`` inside asn1crypto). A miss that waited re-checks the
    cache first, so a burst of calls with a new certificate validates it once.
    """

    def __init__(
        self,
        trust: TrustStore | TrustFolder,
        crls: CrlStore,
        *,
        require_qc_compliance: bool = True,
        max_cache_entries: int = 100_000,
        grace: timedelta = timedelta(0),
        on_certificate_seen: Callable[[bytes], None] | None = None,
    ) -> None:
        self.trust = trust
        self.crls = crls
        self.grace = grace
        self.on_certificate_seen = on_certificate_seen
        """Called with the DER of each certificate that chains to a trusted CA, on
        validation misses (the revocation fetcher records it to fetch its CRL/OCSP)."""
        self.fetch_missing: Callable[[bytes], bool] | None = None
        """Called with the DER of a certificate whose revocation data is missing or stale;
        True when it stored fresh data (the revocation fetcher's `fetch_for`), and the
        validation is tried once more. So a TPP's first call with a certificate of a QTSP
        not seen before — or of an OCSP-only QTSP — is not refused while the periodic fetch
        catches up."""
        self.require_qc_compliance = require_qc_compliance
        self.max_cache_entries = max_cache_entries
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._cache_generation: tuple[int, int] = (-1, -1)
        self._runner = _LoopThread()
        self._misses = threading.Lock()
        self.path_validations = 0
        """How many pyhanko runs happened (cache misses that reached path validation)."""

    @classmethod
    def from_folders(
        cls,
        trust_dir: Path,
        crl_dir: Path,
        *,
        poll_seconds: float = 2.0,
        require_qc_compliance: bool = True,
        grace: timedelta = timedelta(0),
    ) -> CertificateValidator:
        """Trust anchors from ``trust_dir/*.pem`` (re-read when the folder changes), CRLs and
        OCSP responses from ``crl_dir``."""
        return cls(
            TrustFolder(trust_dir, poll_seconds=poll_seconds),
            CrlStore(crl_dir, poll_seconds=poll_seconds),
            require_qc_compliance=require_qc_compliance,
            grace=grace,
        )

    def _trust(self) -> tuple[int, TrustStore]:
        if isinstance(self.trust, TrustFolder):
            return self.trust.current()
        return 0, self.trust

    def close(self) -> None:
        """Stop the private event-loop thread (it is a daemon; closing is optional)."""
        self._runner.close()

    # ------------------------------------------------------------------ public API

    def validate(self, cert: Psd2Certificate, purpose: Purpose, at: datetime) -> Psd2Certificate:
        """Return ``cert`` if it is fit for ``purpose`` at time ``at``; else raise a
        :class:`~stetgate.eidas.errors.CertificateError` subclass."""
        view, hit = self._lookup(cert, purpose, at)
        if hit is not None:
            return hit
        with self._misses:
            view, hit = self._lookup(cert, purpose, at)
            if hit is not None:
                return hit
            try:
                self._pre_check(cert, purpose)
                try:
                    path = self._runner.run(self._run_pyhanko(cert, at, view))
                except RevocationUnavailable:
                    if self.fetch_missing is None or not self._fetch_missing(cert):
                        raise
                    self.crls.refresh()
                    view, _ = self._lookup(cert, purpose, at)
                    path = self._runner.run(self._run_pyhanko(cert, at, view))
                _check_dates(path, at)
            except CertificateError as exc:
                if isinstance(exc, RevocationUnavailable | CertificateRevoked):
                    self._seen(cert)  # the chain was built: record it for the fetcher
                self._remember_failure(cert, purpose, exc, at, view)
                raise
            self._seen(cert)
            return self._remember(cert, purpose, path, view, at)

    def cached(
        self, cert: Psd2Certificate, purpose: Purpose, at: datetime
    ) -> Psd2Certificate | None:
        """The remembered answer for ``cert`` without validating: ``cert`` when it was
        accepted for ``purpose`` and that still holds at ``at``, the remembered refusal
        raised again, None when only `validate` can tell. A dict lookup, so an event loop
        may call it and send only the misses (path validation, ~1 ms of CPU and, with
        fetched CRLs or OCSP, network waits) to a thread."""
        return self._lookup(cert, purpose, at)[1]

    def validate_pem(self, pem_or_der: bytes, purpose: Purpose, at: datetime) -> Psd2Certificate:
        """Parse then validate (e.g. the client certificate forwarded by the TLS proxy)."""
        return self.validate(parse_certificate(pem_or_der), purpose, at)

    def clear_cache(self) -> None:
        self._cache.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ internals

    def _lookup(
        self, cert: Psd2Certificate, purpose: Purpose, at: datetime
    ) -> tuple[_View, Psd2Certificate | None]:
        if at.tzinfo is None:
            raise ValueError("at must be a timezone-aware datetime")
        snapshot = self.crls.snapshot()
        trust_generation, trust = self._trust()
        generation = (snapshot.generation, trust_generation)
        if generation != self._cache_generation:
            self._cache = {}
            self._failures = {}
            self._cache_generation = generation
        view = _View(generation, snapshot, trust)
        failure = self._failures.get((cert.thumbprint_s256, purpose))
        if (
            failure is not None
            and failure.generation == generation
            and failure.at <= at < failure.at + FAILURE_TTL
        ):
            # A fresh exception each time: re-raising one instance would grow its traceback.
            raise failure.error_type(failure.message)
        entry = self._cache.get((cert.thumbprint_s256, purpose))
        if (
            entry is not None
            and entry.generation == generation
            and entry.valid_from <= at < entry.valid_until
            and (entry.cert is cert or entry.cert == cert)
        ):
            return view, entry.cert
        return view, None

    def _fetch_missing(self, cert: Psd2Certificate) -> bool:
        assert self.fetch_missing is not None
        try:
            return self.fetch_missing(cert.der)
        except Exception:
            log.exception("fetching missing revocation data failed")
            return False

    def _seen(self, cert: Psd2Certificate) -> None:
        if self.on_certificate_seen is not None:
            try:
                self.on_certificate_seen(cert.der)
            except Exception:
                log.exception("recording a certificate for the revocation fetcher failed")

    def _pre_check(self, cert: Psd2Certificate, purpose: Purpose) -> None:
        # Never trust fields of a hand-built Psd2Certificate: they must be what the DER says.
        parsed = parse_certificate(cert.der)
        if parsed != cert:
            raise MalformedCertificate(
                "Psd2Certificate fields do not match its DER encoding; build it with "
                "parse_certificate()"
            )
        check_purpose(cert, purpose, require_qc_compliance=self.require_qc_compliance)

    async def _run_pyhanko(
        self, cert: Psd2Certificate, at: datetime, view: _View
    ) -> ValidationPath:
        self.path_validations += 1
        snapshot = view.snapshot
        try:
            leaf = _load_leaf(cert.der)
            context = ValidationContext(
                trust_roots=list(view.trust.roots),
                other_certs=list(view.trust.intermediates),
                crls=snapshot.certificate_lists,
                ocsps=snapshot.ocsp_responses,
                allow_fetching=False,
                revocation_mode="require",
                moment=at,
                time_tolerance=self.grace,
            )
            path: ValidationPath = await _PathValidator(
                leaf, validation_context=context
            ).async_validate_path()
        except CertificateError:
            raise
        except Exception as exc:
            raise _translate(exc, snapshot) from exc
        return path

    def _remember_failure(
        self,
        cert: Psd2Certificate,
        purpose: Purpose,
        error: CertificateError,
        at: datetime,
        view: _View,
    ) -> None:
        if len(self._failures) >= self.max_cache_entries:
            self._failures.clear()
        if view.generation == self._cache_generation:
            self._failures[(cert.thumbprint_s256, purpose)] = _Failure(
                type(error), error.message, at, view.generation
            )

    def _remember(
        self,
        cert: Psd2Certificate,
        purpose: Purpose,
        path: ValidationPath,
        view: _View,
        at: datetime,
    ) -> Psd2Certificate:
        valid_from = cert.not_before
        valid_until = cert.not_after
        used = {id(c) for c in view.snapshot.certificate_lists}
        stale = False
        for pc in path:
            if not isinstance(pc, a1x509.Certificate):
                continue
            valid_from = max(valid_from, pc.not_valid_before)
            valid_until = min(valid_until, pc.not_valid_after)
            if pc.self_signed in ("yes", "maybe"):
                continue  # an anchor needs no CRL
            windows = [
                (info.this_update, info.next_update)
                for info in view.snapshot.for_issuer(pc.issuer.hashable)
                if id(info.crl) in used
            ]
            windows += [
                (o.this_update, o.next_update) for o in view.snapshot.ocsp_for(pc.serial_number)
            ]
            for this_update, next_update in windows:
                valid_from = max(valid_from, this_update - self.grace)
                if next_update is not None:
                    valid_until = min(valid_until, next_update + self.grace)
                    stale = stale or next_update < at
        if stale:
            log.warning(
                "certificate %s accepted on revocation data past its nextUpdate, within the "
                "grace of %s (revocation_grace_seconds)",
                cert.thumbprint_s256,
                self.grace,
            )
        if len(self._cache) >= self.max_cache_entries:
            self._cache.clear()
        if view.generation == self._cache_generation:
            self._cache[(cert.thumbprint_s256, purpose)] = _Entry(
                cert=cert,
                valid_from=valid_from,
                valid_until=valid_until,
                generation=view.generation,
            )
        return cert


@functools.lru_cache(maxsize=1024)
def _load_leaf(der: bytes) -> a1x509.Certificate:
    """asn1crypto objects memoize the RFC 5280 §7.1 string preparation of names
    (~200 µs per fresh certificate); reusing them makes re-validation after a CRL
    change cheaper."""
    return a1x509.Certificate.load(der)


def _check_dates(path: ValidationPath, at: datetime) -> None:
    """Certificate validity without pyhanko's ``time_tolerance`` (which carries the revocation
    grace): RFC 5280 §4.1.2.5, no tolerance."""
    for pc in path:
        if not isinstance(pc, a1x509.Certificate):
            continue
        if at > pc.not_valid_after:
            raise CertificateExpired(
                f"{pc.subject.human_friendly} expired on {pc.not_valid_after.isoformat()}"
            )
        if at < pc.not_valid_before:
            raise CertificateNotYetValid(
                f"{pc.subject.human_friendly} is not valid before {pc.not_valid_before.isoformat()}"
            )


def _translate(exc: Exception, snapshot: CrlSnapshot) -> CertificateError:
    """Map pyhanko-certvalidator's exceptions onto stetgate's typed errors."""
    msg = str(exc)
    if isinstance(exc, RevokedError):
        return CertificateRevoked(msg)
    if isinstance(exc, ExpiredError):
        return CertificateExpired(msg)
    if isinstance(exc, NotYetValidError):
        return CertificateNotYetValid(msg)
    if isinstance(exc, InsufficientRevinfoError):  # includes StaleRevinfoError
        extra = (
            f" (unreadable CRL files: {'; '.join(snapshot.problems)})" if snapshot.problems else ""
        )
        return RevocationUnavailable(
            f"no fresh CRL or OCSP response for the certificate path, validation fails "
            f"closed: {msg}{extra}"
        )
    if isinstance(exc, PathBuildingError):
        return UnknownIssuer(f"the certificate does not chain to a trusted QTSP: {msg}")
    if isinstance(exc, InvalidCertificateError) and "self-signed" in msg:
        return UnknownIssuer(f"the certificate does not chain to a trusted QTSP: {msg}")
    if isinstance(exc, PathValidationError) and "signature" in msg.lower():
        return UnknownIssuer(
            f"the certificate names a trusted QTSP as issuer but is not signed by it: {msg}"
        )
    if isinstance(exc, ValidationError):
        return InvalidCertificateChain(msg)
    return MalformedCertificate(f"certificate could not be path-validated: {exc!r}")


__all__ = ["EKU_CLIENT_AUTH", "CertificateValidator", "check_purpose"]
