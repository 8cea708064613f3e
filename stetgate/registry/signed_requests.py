"""Proof that a register request comes from the TPP: HTTP signature with the QSealC it registers.

BPCE ("API register"): the TPP is not known yet when it registers, so the QSealC travels in the
body as ``jwks.keys[0].x5c[0]`` and the request is signed (draft-cavage-12, STET form) with its
private key. ``keyId`` names that key by its ``kid``, by a certificate URL, or as
``SN=<hex serial>,CA=<issuer DN>`` (docs/decisions.md#http-signatures); whatever the form, it
resolves **only** against the certificate in the body — nothing is fetched. The signed-header
policy, the ``Digest`` check and the ``Date`` skew are those of
:func:`stetgate.httpsig.verify_request` (``(request-target)``, ``x-request-id`` and ``digest``
must be signed).

Once the signature is good, :func:`require_trusted_seal` checks that the certificate is one
stetgate accepts for the organization on the TLS session: valid QSealC (chain to a trusted
QTSP, validity, CRL, QcType ``eseal``), with a PSD2 role, and the **same
organizationIdentifier as the QWAC** — otherwise a TPP could register a seal of another PSP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from stetgate.eidas import CertificateError, Psd2Certificate
from stetgate.eidas.validation import CertificateValidator
from stetgate.httpsig import (
    HeaderInput,
    KeyIdForm,
    KeyResolver,
    ResolvedKey,
    SignatureError,
    UnknownKey,
    classify_key_id,
    parse_sn_ca_key_id,
    verify_request,
)
from stetgate.registry.errors import InvalidClientMetadata, InvalidSignature
from stetgate.registry.metadata_rules import MAX_X5U_LENGTH, SealKey
from stetgate.serving.blocking import BlockingCalls

_SPACE_AFTER_SEPARATOR = re.compile(r"(?<!\\)([,+])\s+")
"""``C=FR, O=x``: the space after an unescaped separator is not part of the next type."""


@dataclass(frozen=True, slots=True)
class SealSignature:
    """A verified register request: the ``keyId`` used and the certificate URL to remember
    (the ``x5u`` of the key, or the ``keyId`` itself when it is a URL)."""

    key_id: str
    certificate_url: str | None


def verify_registration_signature(
    method: str,
    target: str,
    headers: HeaderInput,
    body: bytes,
    seal: SealKey,
    *,
    now: datetime,
    max_skew_seconds: int,
) -> SealSignature:
    """Verify ``Signature`` and ``Digest`` with the body's QSealC; raise InvalidSignature (401)
    saying what is wrong."""
    try:
        verified = verify_request(
            method,
            target,
            headers,
            body,
            seal_key_resolver(seal),
            now=now,
            max_skew_seconds=max_skew_seconds,
        )
    except SignatureError as exc:
        raise InvalidSignature(exc.message, reason=exc.reason) from None
    url = (
        verified.key_id
        if classify_key_id(verified.key_id) is KeyIdForm.CERTIFICATE_URL
        else seal.x5u
    )
    return SealSignature(key_id=verified.key_id, certificate_url=url)


def seal_key_resolver(seal: SealKey) -> KeyResolver[SealKey]:
    """``keyId`` → the key of ``seal`` when it names that certificate, else UnknownKey.

    An exact match of the ``kid`` comes first, whatever its form (a TPP may register its
    ``SN=…,CA=…`` keyId or a URL as kid); otherwise by the keyId's form:

    * a ``kid``: equal to ``jwks.keys[0].kid`` (or to the certificate's ``x5t#S256`` when the
      key has no ``kid``, which is the ``kid`` stetgate then registers);
    * a URL: ``https``, equal to ``x5u`` when the key has one — it is a name, never fetched;
    * ``SN=…,CA=…``: the certificate's serial and issuer (attribute order and case ignored).
    """

    def resolve(key_id: str) -> ResolvedKey[SealKey]:
        if key_id == seal.effective_kid:  # exact kid first, whatever it looks like
            return ResolvedKey(seal.x509.public_key(), seal)
        form = classify_key_id(key_id)
        if form is KeyIdForm.REGISTRATION_KID:
            if key_id != seal.effective_kid:
                raise UnknownKey("keyId is not the kid of jwks.keys[0]")
        elif form is KeyIdForm.CERTIFICATE_URL:
            if not key_id.startswith("https://") or len(key_id) > MAX_X5U_LENGTH:
                raise UnknownKey(
                    f"a keyId URL must be https and at most {MAX_X5U_LENGTH} characters"
                )
            if seal.x5u is not None and key_id != seal.x5u:
                raise UnknownKey("keyId is not the x5u of jwks.keys[0]")
        else:
            serial, issuer = parse_sn_ca_key_id(key_id)
            if serial != seal.x509.serial_number or not same_distinguished_name(
                issuer, seal.x509.issuer
            ):
                raise UnknownKey("keyId SN/CA do not name the certificate in jwks.keys[0]")
        return ResolvedKey(seal.x509.public_key(), seal)

    return resolve


def same_distinguished_name(written: str, name: x509.Name) -> bool:
    """Does the RFC 4514 string ``written`` name ``name``? Banks and TPPs write issuer DNs
    in either RDN order and with varying case, so compare the attribute multisets."""
    try:
        parsed = x509.Name.from_rfc4514_string(_SPACE_AFTER_SEPARATOR.sub(r"\1", written.strip()))
    except ValueError:
        return False
    return _attributes(parsed) == _attributes(name)


async def require_trusted_seal(
    seal: SealKey,
    qwac: Psd2Certificate,
    validator: CertificateValidator,
    now: datetime,
    blocking: BlockingCalls | None = None,
) -> Psd2Certificate:
    """The QSealC is valid for sealing now and belongs to the organization of the QWAC on
    the TLS session (ETSI TS 119 495 §5.2.1 organizationIdentifier); raise
    InvalidClientMetadata (400, RFC 7591 §3.2.2) otherwise. A QSealC is usually new to the
    bank at registration, so its path validation (pyhanko, ~1 ms of CPU and more with many
    CRLs) is a cache miss: a known one is answered from the validator's cache, a new one is
    validated on ``blocking``'s threads, never on the event loop. Without ``blocking`` it is
    validated in the caller's thread (a caller already off the loop)."""
    try:
        certificate = validator.cached(seal.certificate, "qsealc", now)
        if certificate is None:
            certificate = (
                validator.validate(seal.certificate, "qsealc", now)
                if blocking is None
                else await blocking.run(validator.validate, seal.certificate, "qsealc", now)
            )
    except CertificateError as exc:
        raise InvalidClientMetadata(
            f"the QSealC in jwks.keys[0] is not acceptable: {exc.message}", reason=exc.reason
        ) from None
    if certificate.organization_identifier != qwac.organization_identifier:
        raise InvalidClientMetadata(
            f"the QSealC belongs to {certificate.organization_identifier}, the QWAC of this "
            f"TLS session to {qwac.organization_identifier}: both must be the same "
            "organization",
            reason="seal_organization_mismatch",
        )
    if not certificate.roles:
        raise InvalidClientMetadata(
            "the QSealC carries no PSD2 role (ETSI TS 119 495 §5.1)", reason="role_absent"
        )
    return certificate


def _attributes(name: x509.Name) -> Sequence[tuple[str, str]]:
    return sorted(
        (
            attr.oid.dotted_string,
            " ".join(attr.value.casefold().split())
            if isinstance(attr.value, str)
            else attr.value.hex(),
        )
        for attr in name
    )
