"""CRLs and OCSP responses read from a folder, re-read only when the folder changes.

RFC 5280 §5 CRLs (DER or PEM, ``*.crl``/``*.der``/``*.pem``) and RFC 6960 OCSP responses
(DER, ``*.ocsp``) are dropped into ``crl_dir`` by the revocation fetcher
(`stetgate.eidas.revocation_fetcher`, one per instance), by an operator, or by the test QTSP —
each replacing its file atomically. The folder is how the workers of an instance share what one
of them fetched. Parsing
CRLs on every TLS handshake would be wasteful, so the store keeps a parsed
snapshot and looks at the folder (names, sizes, mtimes, inodes — a cheap
``scandir``) at most every ``poll_seconds``. Each content change produces a new
``generation`` number, which the validator uses to drop its cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from asn1crypto import crl as a1crl
from asn1crypto import ocsp as a1ocsp
from asn1crypto import pem

from stetgate.eidas.files import FolderSignature, folder_signature

log = logging.getLogger(__name__)

_SUFFIXES = (".crl", ".der", ".pem", ".ocsp")
OCSP_SUFFIX = ".ocsp"


@dataclass(frozen=True, slots=True)
class CrlInfo:
    """One parsed CRL and the fields the cache window needs (RFC 5280 §5.1.2.4-5)."""

    crl: a1crl.CertificateList
    issuer: object  # asn1crypto Name.hashable
    this_update: datetime
    next_update: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class OcspInfo:
    """One OCSP response (RFC 6960 §4.2.1) for one certificate, as stored by the fetcher."""

    response: a1ocsp.OCSPResponse
    serial: int
    issuer_key_hash: bytes
    this_update: datetime
    next_update: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class CrlSnapshot:
    """The revocation data present at one moment; ``generation`` changes when it changes."""

    generation: int
    crls: tuple[CrlInfo, ...] = ()
    problems: tuple[str, ...] = field(default=())
    ocsps: tuple[OcspInfo, ...] = ()

    @property
    def certificate_lists(self) -> list[a1crl.CertificateList]:
        """The newest CRL of each issuer (and issuing distribution point): a copy fetched
        earlier, or dropped by hand beside the fetched one, must not be weighed against it —
        an older CRL may not list a certificate revoked since (RFC 5280 §5.2.3: the higher
        CRLNumber/thisUpdate supersedes)."""
        newest: dict[tuple[object, bytes], CrlInfo] = {}
        for info in self.crls:
            key = (info.issuer, _distribution_point(info.crl))
            kept = newest.get(key)
            if kept is None or info.this_update > kept.this_update:
                newest[key] = info
        return [info.crl for info in newest.values()]

    @property
    def ocsp_responses(self) -> list[a1ocsp.OCSPResponse]:
        return [o.response for o in self.ocsps]

    def for_issuer(self, issuer_hashable: object) -> list[CrlInfo]:
        return [c for c in self.crls if c.issuer == issuer_hashable]

    def ocsp_for(self, serial: int) -> list[OcspInfo]:
        """The OCSP responses for certificates with this serial (bounds a cache window only:
        pyhanko matches the full CertID)."""
        return [o for o in self.ocsps if o.serial == serial]


def _distribution_point(crl: a1crl.CertificateList) -> bytes:
    idp = crl.issuing_distribution_point_value
    return b"" if idp is None else bytes(idp.dump())


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
        self._signature: FolderSignature | None = None
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

    def _scan(self) -> FolderSignature:
        return folder_signature(self.crl_dir, _SUFFIXES)

    def _load(self, signature: FolderSignature, generation: int) -> CrlSnapshot:
        infos: list[CrlInfo] = []
        ocsps: list[OcspInfo] = []
        problems: list[str] = []
        for name, *_ in signature:
            path = self.crl_dir / name
            try:
                data = path.read_bytes()
                if name.endswith(OCSP_SUFFIX):
                    ocsps.append(parse_ocsp_file(data, source=str(path)))
                else:
                    infos.extend(parse_crl_file(data, source=str(path)))
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: {exc}")
                log.warning("ignoring unreadable revocation file %s: %s", path, exc)
        return CrlSnapshot(
            generation=generation, crls=tuple(infos), problems=tuple(problems), ocsps=tuple(ocsps)
        )


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


def parse_ocsp_file(data: bytes, *, source: str = "<bytes>") -> OcspInfo:
    """A DER ``OCSPResponse`` with one successful basic response (RFC 6960 §4.2.1). Its
    signature is checked by the fetcher before it is stored and again by path validation."""
    try:
        response = a1ocsp.OCSPResponse.load(data, strict=True)
        if response["response_status"].native != "successful":
            raise ValueError(f"response status {response['response_status'].native}")
        single = response.basic_ocsp_response["tbs_response_data"]["responses"][0]
        cert_id = single["cert_id"]
        out = OcspInfo(
            response=response,
            serial=int(cert_id["serial_number"].native),
            issuer_key_hash=bytes(cert_id["issuer_key_hash"].native),
            this_update=single["this_update"].native,
            next_update=single["next_update"].native,
            source=source,
        )
    except Exception as exc:
        raise ValueError(f"not an OCSP response: {exc}") from exc
    return out


@dataclass(frozen=True, slots=True)
class RevocationAge:
    """How old one piece of revocation data is (for monitoring: a value that keeps growing
    means the fetcher is not getting fresh data)."""

    issuer: str
    source: str
    age_seconds: float
    """Seconds since thisUpdate."""
    seconds_to_next_update: float | None
    """Negative once nextUpdate has passed: the data is stale."""


def revocation_data_age(snapshot: CrlSnapshot, now: datetime) -> list[RevocationAge]:
    """Age of every CRL and OCSP response in ``snapshot`` at ``now`` — a plain function a
    metrics endpoint can read (``services.tpp_identity.validator.crls.snapshot()``)."""
    out: list[RevocationAge] = []
    for crl in snapshot.crls:
        out.append(
            RevocationAge(
                issuer=crl.crl.issuer.human_friendly,
                source=crl.source,
                age_seconds=(now - crl.this_update).total_seconds(),
                seconds_to_next_update=None
                if crl.next_update is None
                else (crl.next_update - now).total_seconds(),
            )
        )
    for o in snapshot.ocsps:
        out.append(
            RevocationAge(
                issuer=f"OCSP serial {o.serial:x}",
                source=o.source,
                age_seconds=(now - o.this_update).total_seconds(),
                seconds_to_next_update=None
                if o.next_update is None
                else (o.next_update - now).total_seconds(),
            )
        )
    return out


__all__ = [
    "CrlInfo",
    "CrlSnapshot",
    "CrlStore",
    "OcspInfo",
    "RevocationAge",
    "parse_crl_file",
    "parse_ocsp_file",
    "revocation_data_age",
]
