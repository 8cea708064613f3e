"""Trusted QTSP certificates, loaded from a folder of PEM files.

Self-signed CA certificates are trust anchors (RFC 5280 §6.1.1 (d)); other CA
certificates in the folder are offered to path building as intermediates, so a
QTSP's issuing CA can be dropped in beside its root. Only CA certificates are
accepted (basicConstraints cA, RFC 5280 §4.2.1.9): a leaf in the trust folder
would be a configuration error that silently widens trust.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as a1x509


class TrustStore:
    """Trust anchors and intermediates (asn1crypto objects, as pyhanko-certvalidator
    takes them) plus the PEM bundle the TLS server needs as ``ssl_ca_certs``."""

    def __init__(self, certificates: Iterable[a1x509.Certificate]) -> None:
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
        if not roots:
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


__all__ = ["TrustStore", "load_pem_certificates"]
