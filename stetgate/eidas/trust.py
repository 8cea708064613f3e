"""Trusted QTSP certificates, loaded from a folder of PEM files.

Self-signed CA certificates are trust anchors (RFC 5280 §6.1.1 (d)); other CA
certificates in the folder are offered to path building as intermediates, so a
QTSP's issuing CA can be dropped in beside its root. Only CA certificates are
accepted (basicConstraints cA, RFC 5280 §4.2.1.9): a leaf in the trust folder
would be a configuration error that silently widens trust.

`TrustFolder` re-reads the folder when it changes, so an anchor added or removed takes effect
without a restart (at most ``poll_seconds`` later). A folder that no longer loads (no anchor
left, an unreadable file) trusts nothing until it is fixed: keeping the previous anchors would
keep one the operator just removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as a1x509

from stetgate.eidas.files import FolderSignature, folder_signature

log = logging.getLogger(__name__)


class TrustStore:
    """Trust anchors and intermediates (asn1crypto objects, as pyhanko-certvalidator
    takes them) plus the PEM bundle the TLS server needs as ``ssl_ca_certs``."""

    def __init__(
        self, certificates: Iterable[a1x509.Certificate], *, allow_empty: bool = False
    ) -> None:
        roots: list[a1x509.Certificate] = []
        intermediates: list[a1x509.Certificate] = []
        seen: set[bytes] = set()
        for cert in certificates:
            digest: bytes = cert.sha256
            if digest in seen:
                continue
            seen.add(digest)
            if not cert.ca:
                raise ValueError(
                    f"trust store: {cert.subject.human_friendly!r} is not a CA certificate "
                    "(basicConstraints cA is not true); only QTSP CA certificates belong here"
                )
            (roots if cert.self_signed in ("yes", "maybe") else intermediates).append(cert)
        if not roots and not allow_empty:
            raise ValueError("trust store: no self-signed CA certificate (trust anchor) found")
        self.roots: tuple[a1x509.Certificate, ...] = tuple(roots)
        self.intermediates: tuple[a1x509.Certificate, ...] = tuple(intermediates)

    @classmethod
    def from_folder(cls, folder: Path) -> TrustStore:
        """Every ``*.pem`` file in ``folder`` (each may hold several certificates)."""
        folder = Path(folder)
        files = sorted(p for p in folder.glob("*.pem") if p.is_file())
        if not files:
            raise ValueError(f"trust store: no *.pem file in {folder}")
        certs: list[a1x509.Certificate] = []
        for path in files:
            certs.extend(load_pem_certificates(path.read_bytes(), source=str(path)))
        return cls(certs)

    @property
    def certificates(self) -> tuple[a1x509.Certificate, ...]:
        return (*self.roots, *self.intermediates)

    def pem_bundle(self) -> bytes:
        """All CA certificates as one PEM bundle (anchors first)."""
        return b"".join(
            pem.armor("CERTIFICATE", c.dump()) for c in (*self.roots, *self.intermediates)
        )

    def write_pem_bundle(self, path: Path) -> Path:
        """Write :meth:`pem_bundle` to ``path`` (for ``ssl_ca_certs``) and return it."""
        path = Path(path)
        path.write_bytes(self.pem_bundle())
        return path


class TrustFolder:
    """The trust anchors of a folder, re-read when its ``*.pem`` files change (names, sizes,
    mtimes, inodes — a ``scandir`` at most every ``poll_seconds``). ``generation`` changes with
    the anchors, so the validator drops the answers it cached under the previous ones."""

    def __init__(
        self,
        folder: Path,
        *,
        poll_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = Path(folder)
        self.poll_seconds = poll_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._signature = self._scan()
        self._store = TrustStore.from_folder(self.folder)  # a bad folder stops the start
        self.generation = 0
        self._checked_at = self._monotonic()

    def current(self) -> tuple[int, TrustStore]:
        """(generation, anchors), re-reading the folder if it may have changed."""
        checked = self._checked_at
        if self._monotonic() - checked < self.poll_seconds:
            return self.generation, self._store
        with self._lock:
            if self._monotonic() - self._checked_at >= self.poll_seconds:
                signature = self._scan()
                if signature != self._signature:
                    self._store = self._reload()
                    self._signature = signature
                    self.generation += 1
                self._checked_at = self._monotonic()
            return self.generation, self._store

    def _reload(self) -> TrustStore:
        try:
            store = TrustStore.from_folder(self.folder)
        except (OSError, ValueError) as exc:
            log.error("trust folder %s no longer loads, trusting no QTSP: %s", self.folder, exc)
            return TrustStore((), allow_empty=True)
        log.info(
            "trust folder %s reloaded: %d anchor(s), %d intermediate(s)",
            self.folder,
            len(store.roots),
            len(store.intermediates),
        )
        return store

    def _scan(self) -> FolderSignature:
        return folder_signature(self.folder, (".pem",))


def load_pem_certificates(data: bytes, *, source: str = "<bytes>") -> list[a1x509.Certificate]:
    """All ``CERTIFICATE`` blocks of a PEM text; raises ``ValueError`` naming ``source``."""
    try:
        out: list[a1x509.Certificate] = []
        for kind, _headers, der in pem.unarmor(data, multiple=True):
            if kind != "CERTIFICATE":
                continue
            cert = a1x509.Certificate.load(der, strict=True)
            _ = cert.subject.human_friendly, cert.ca  # decode now, fail here not later
            out.append(cert)
    except Exception as exc:
        raise ValueError(f"{source}: not a PEM certificate file: {exc}") from exc
    if not out:
        raise ValueError(f"{source}: no CERTIFICATE block")
    return out


__all__ = ["TrustFolder", "TrustStore", "load_pem_certificates"]
