"""HTTP signatures on resource-API calls: the TPP seals each request with its registered QSealC.

docs/decisions.md#http-signatures: draft-cavage with ``rsa-sha256`` only; ``(request-target)``,
``x-request-id``, ``digest`` (with a body) and every ``psu-*`` header present must be signed
(`stetgate.httpsig.verify_request` enforces it, with the ``Digest`` and signed-``Date`` checks);
``keyId`` resolves **only** against the QSealCs stored for the client in ``client_certificates``
— by the ``kid`` recorded at registration, by the certificate URL recorded at registration
(compared, never fetched), or by ``SN=<hex serial>,CA=<issuer DN>`` — and the certificate must
be a valid QSealC (chain, CRL, QcType eseal) of the same organization as the access token. Any
failure is a 401.

Cost on the hot path: the stored certificates' identifiers come with the access-token lookup
(one statement, `stetgate.psd2.callers`); PEMs are fetched and parsed once per certificate and
kept in `SealKeyring`, keyed by thumbprint, so a rotated or removed QSealC is never used
again: the next lookup simply no longer returns it. Validation results are cached by the
certificate validator until the certificate or CRL changes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from sqlalchemy import Engine, select

from stetgate.eidas import CertificateError, Psd2Certificate, parse_certificate
from stetgate.eidas.validation import CertificateValidator
from stetgate.httpsig import (
    HeaderInput,
    KeyIdForm,
    ResolvedKey,
    SignatureError,
    UnknownKey,
    classify_key_id,
    parse_sn_ca_key_id,
    verify_request,
)
from stetgate.psd2.errors import Unauthorized
from stetgate.registry.signed_requests import same_distinguished_name
from stetgate.store.db import read_connection
from stetgate.store.schema import client_certificates


@dataclass(frozen=True, slots=True)
class SealReference:
    """What the client registered for one QSealC (a ``client_certificates`` row, no PEM)."""

    thumbprint: str
    kid: str | None
    url: str | None


@dataclass(frozen=True, slots=True, eq=False)
class _Seal:
    certificate: x509.Certificate
    parsed: Psd2Certificate
    public_key: PublicKeyTypes


class SealKeyring:
    """Parsed registered QSealCs by thumbprint (x5t#S256), loaded on first use."""

    def __init__(
        self, engine: Engine, validator: CertificateValidator, max_entries: int = 4096
    ) -> None:
        self._engine = engine
        self._validator = validator
        self._seals: dict[str, _Seal] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def _load(self, client_id: str, references: Sequence[SealReference]) -> None:
        missing = [r.thumbprint for r in references if r.thumbprint not in self._seals]
        if not missing:
            return
        cc = client_certificates.c
        with read_connection(self._engine) as conn:
            rows = conn.execute(
                select(cc.thumbprint, cc.pem).where(
                    cc.client_id == client_id, cc.kind == "qsealc", cc.thumbprint.in_(missing)
                )
            ).all()
        with self._lock:
            if len(self._seals) + len(rows) > self._max:
                self._seals.clear()
            for thumbprint, pem in rows:
                try:
                    parsed = parse_certificate(pem.encode())
                    certificate = x509.load_der_x509_certificate(parsed.der)
                except (CertificateError, ValueError):
                    continue
                self._seals[thumbprint] = _Seal(certificate, parsed, certificate.public_key())

    def resolver(self, client_id: str, references: Sequence[SealReference]) -> _Resolver:
        """The keyId resolver over this client's registered QSealCs (loaded if new)."""
        self._load(client_id, references)
        seals = self._seals
        return _Resolver([(r, seals[r.thumbprint]) for r in references if r.thumbprint in seals])

    def verify(
        self,
        method: str,
        target: str,
        headers: HeaderInput,
        body: bytes,
        *,
        client_id: str,
        org_id: str,
        references: Sequence[SealReference],
        now: datetime,
        max_skew_seconds: int,
    ) -> Psd2Certificate:
        """Verify the request's signature and return the validated QSealC; raise Unauthorized."""
        if not references:
            raise Unauthorized(
                "no QSealC is registered for this client, so its requests cannot be verified "
                "(register one: API register jwks, or `stetgate clients add --qsealc`)",
                error="",
            )
        try:
            verified = verify_request(
                method,
                target,
                headers,
                body,
                self.resolver(client_id, references),
                now=now,
                max_skew_seconds=max_skew_seconds,
            )
        except SignatureError as exc:
            raise Unauthorized(f"HTTP signature refused: {exc.message}", error="") from None
        try:
            seal = self._validator.validate(verified.context, "qsealc", now)
        except CertificateError as exc:
            raise Unauthorized(
                f"the signing QSealC is not acceptable: {exc.message}", error=""
            ) from None
        if seal.organization_identifier != org_id:
            raise Unauthorized(
                "the signing QSealC belongs to another organization than the access token", error=""
            )
        return seal


class _Resolver:
    """``keyId`` → one of the client's registered QSealCs (docs/decisions.md#http-signatures:
    no other source)."""

    __slots__ = ("_candidates",)

    def __init__(self, candidates: Sequence[tuple[SealReference, _Seal]]) -> None:
        self._candidates = candidates

    def __call__(self, key_id: str) -> ResolvedKey[Psd2Certificate]:
        for reference, seal in self._candidates:  # exact kid first, whatever it looks like
            if reference.kid is not None and key_id == reference.kid:
                return ResolvedKey(seal.public_key, seal.parsed)
        form = classify_key_id(key_id)
        serial_issuer = parse_sn_ca_key_id(key_id) if form is KeyIdForm.SERIAL_AND_ISSUER else None
        for reference, seal in self._candidates:
            if form is KeyIdForm.REGISTRATION_KID:
                matches = key_id in (reference.kid, reference.thumbprint)
            elif form is KeyIdForm.CERTIFICATE_URL:
                matches = reference.url is not None and key_id == reference.url
            else:
                assert serial_issuer is not None
                serial, issuer = serial_issuer
                matches = serial == seal.certificate.serial_number and _names_issuer(issuer, seal)
            if matches:
                return ResolvedKey(seal.public_key, seal.parsed)
        raise UnknownKey("keyId matches none of the QSealCs registered for this client")


@functools.lru_cache(maxsize=1024)
def _names_issuer(written: str, seal: _Seal) -> bool:
    """`same_distinguished_name`, memoised: a TPP sends the same keyId on every call, and
    parsing an RFC 4514 string costs more than the rest of the key lookup."""
    return same_distinguished_name(written, seal.certificate.issuer)
