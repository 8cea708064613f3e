"""The TPP's eIDAS material: the QWAC for mutual TLS (RFC 8705 §2, STET v1.4.2 Part I §3.2) and
the QSealC for request signatures (docs/decisions.md#http-signatures)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


@dataclass(frozen=True)
class TppCredentials:
    """The TPP's eIDAS material: QWAC for mTLS, QSealC for signatures."""

    qwac_cert: Path
    qwac_key: Path
    qsealc_cert: Path
    qsealc_key: Path
    key_id: str | None = None
    """Signature keyId; default ``SN=<hex serial>,CA=<issuer DN>`` of the QSealC."""

    @classmethod
    def from_directory(cls, directory: Path, key_id: str | None = None) -> TppCredentials:
        """The layout `stetgate certs issue-tpp --out DIR` writes."""
        return cls(
            directory / "qwac.pem",
            directory / "qwac.key",
            directory / "qsealc.pem",
            directory / "qsealc.key",
            key_id,
        )

    def qsealc(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.qsealc_cert.read_bytes())

    def signing_key(self) -> RSAPrivateKey:
        key = serialization.load_pem_private_key(self.qsealc_key.read_bytes(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise TypeError("the QSealC key must be RSA (STET signs with rsa-sha256)")
        return key

    def default_key_id(self) -> str:
        cert = self.qsealc()
        return f"SN={cert.serial_number:x},CA={cert.issuer.rfc4514_string()}"

    def mtls_context(self, ca_file: Path | None = None) -> ssl.SSLContext:
        """TLS that presents the QWAC and trusts ``ca_file`` (else the system store)."""
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        context.load_cert_chain(str(self.qwac_cert), str(self.qwac_key))
        return context
