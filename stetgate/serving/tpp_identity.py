"""Who is calling: the TPP identity behind the client certificate of a request.

Refusals are counted by reason (``stetgate_certificate_failures_total``) and the organization
of an accepted certificate is noted for the access line (`stetgate.serving.access`).

Parsing a certificate costs ~100 µs and path validation ~1 ms, so both are cached (see
`TppIdentity`): validation results live until the certificate's notAfter or the CRL's
nextUpdate, whichever comes first, and are dropped when the CRL set changes (RFC 5280 §6.3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from stetgate.eidas import CertificateError, Psd2Certificate, parse_certificate
from stetgate.eidas.model import Purpose
from stetgate.eidas.validation import CertificateValidator
from stetgate.observability.metrics import count_certificate_failure
from stetgate.serving.access import note_caller
from stetgate.serving.blocking import BlockingCalls
from stetgate.serving.client_cert import ClientCertificateSource


class NoClientCertificate(CertificateError):
    """The request came without a client certificate (RFC 8705 §2: mTLS is the only client
    authentication stetgate accepts)."""

    reason = "no_client_certificate"


class TppIdentity:
    """Turns a request scope into a parsed (and, on demand, validated) eIDAS certificate.

    `parse_certificate` keeps an LRU of parsed certificates keyed by their bytes, and the
    validator caches acceptances until notAfter/nextUpdate, so a returning TPP costs two
    dictionary lookups."""

    def __init__(self, source: ClientCertificateSource, validator: CertificateValidator) -> None:
        self._source = source
        self.validator = validator

    def presented(self, scope: Mapping[str, Any]) -> Psd2Certificate | None:
        """The parsed client certificate, or None; raises CertificateError when unparsable."""
        der = self._source.presented_der(scope)
        return None if der is None else parse_certificate(der)

    def authenticate(
        self, scope: Mapping[str, Any], at: datetime, purpose: Purpose = "qwac"
    ) -> Psd2Certificate:
        """The validated QWAC of this request; raises a CertificateError saying what is wrong."""
        with _refusals_counted():
            valid = self.validator.validate(self._required(scope), purpose, at)
        note_caller(scope, org_id=valid.organization_identifier)
        return valid

    async def authenticate_off_loop(
        self,
        scope: Mapping[str, Any],
        at: datetime,
        blocking: BlockingCalls,
        purpose: Purpose = "qwac",
    ) -> Psd2Certificate:
        """`authenticate` for a handler on the event loop: a returning TPP's certificate is
        answered from the validator's cache on the loop; a new one (or one whose CRL
        changed) is path-validated on ``blocking``'s threads."""
        # The refusal counting of `_refusals_counted`, inline: a generator-based context
        # manager costs this hot path (every token request) a few microseconds.
        try:
            cert = self._required(scope)
            valid = self.validator.cached(cert, purpose, at)
            if valid is None:
                valid = await blocking.run(self.validator.validate, cert, purpose, at)
        except CertificateError as exc:
            count_certificate_failure(exc.reason)
            raise
        note_caller(scope, org_id=valid.organization_identifier)
        return valid

    def _required(self, scope: Mapping[str, Any]) -> Psd2Certificate:
        cert = self.presented(scope)
        if cert is None:
            raise NoClientCertificate("no client certificate was presented on the TLS session")
        return cert


@contextmanager
def _refusals_counted() -> Iterator[None]:
    """Count a refused certificate by its reason (``stetgate_certificate_failures_total``)."""
    try:
        yield
    except CertificateError as exc:
        count_certificate_failure(exc.reason)
        raise
