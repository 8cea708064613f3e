"""Who is calling: the TPP identity behind the client certificate of a request.

Parsing a certificate costs ~100 µs and path validation far more, so both are cached: parsed
certificates by their DER bytes (bounded LRU), validation results inside the validator until the
certificate's notAfter or the CRL's nextUpdate, whichever comes first (decisions.md; RFC 5280
§6.3). A cache hit costs a dictionary lookup.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from stetgate.eidas import CertificateError, Psd2Certificate, parse_certificate
from stetgate.eidas.model import Purpose
from stetgate.eidas.validation import CertificateValidator
from stetgate.serving.client_cert import ClientCertificateSource


class NoClientCertificate(CertificateError):
    """The request came without a client certificate (RFC 8705 §2: mTLS is the only client
    authentication stetgate accepts)."""

    reason = "no_client_certificate"


class TppIdentity:
    """Turns a request scope into a parsed (and, on demand, validated) eIDAS certificate."""

    def __init__(
        self,
        source: ClientCertificateSource,
        validator: CertificateValidator,
        cache_size: int = 1024,
    ) -> None:
        self._source = source
        self.validator = validator
        self._parsed: OrderedDict[bytes, Psd2Certificate | CertificateError] = OrderedDict()
        self._cache_size = cache_size

    def parse(self, der: bytes) -> Psd2Certificate:
        """Parse with an LRU cache; parse failures are cached too (they are deterministic)."""
        cached = self._parsed.get(der)
        if cached is None:
            try:
                cached = parse_certificate(der)
            except CertificateError as exc:
                cached = exc
            self._parsed[der] = cached
            if len(self._parsed) > self._cache_size:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(der)
        if isinstance(cached, CertificateError):
            raise cached
        return cached

    def presented(self, scope: Mapping[str, Any]) -> Psd2Certificate | None:
        """The parsed client certificate, or None; raises CertificateError when unparsable."""
        der = self._source.presented_der(scope)
        return None if der is None else self.parse(der)

    def authenticate(
        self, scope: Mapping[str, Any], at: datetime, purpose: Purpose = "qwac"
    ) -> Psd2Certificate:
        """The validated QWAC of this request; raises a CertificateError saying what is wrong."""
        cert = self.presented(scope)
        if cert is None:
            raise NoClientCertificate("no client certificate was presented on the TLS session")
        return self.validator.validate(cert, purpose, at)
