"""The ``keyId`` forms STET banks accept, classified so a resolver can match registered QSealCs.

STET's OAS text asks for a URL where the QSealC can be downloaded; several STET banks require
``SN=<hex serial>,CA=<issuer DN>`` instead. stetgate also accepts the ``kid``
given at registration. Whatever the form, the resolver matches it only against the TPP's
registered certificates and never dereferences a URL from a request (no SSRF;
docs/decisions.md#http-signatures).
"""

from __future__ import annotations

import enum
import re

from stetgate.httpsig.errors import UnknownKey

_SERIAL = re.compile(r"[0-9A-Fa-f]{1,64}")
"""RFC 5280 §4.1.2.2 caps serials at 20 octets; leading zeros sent by some banks fit in 64."""


class KeyIdForm(enum.Enum):
    """How a ``keyId`` names a certificate."""

    SERIAL_AND_ISSUER = "serial_and_issuer"
    """``SN=<hex serial>,CA=<issuer DN>``: match on (serial, issuer) of registered certificates."""
    CERTIFICATE_URL = "certificate_url"
    """``https://...``: match the URL given at registration, byte for byte; never fetch it."""
    REGISTRATION_KID = "registration_kid"
    """Anything else: the ``kid`` the TPP gave the certificate when it registered."""


def classify_key_id(key_id: str) -> KeyIdForm:
    """Tell which :class:`KeyIdForm` ``key_id`` is written in (no validation beyond the prefix)."""
    lowered = key_id[:8].lower()
    if lowered.startswith("sn="):
        return KeyIdForm.SERIAL_AND_ISSUER
    if lowered.startswith(("https://", "http://")):
        return KeyIdForm.CERTIFICATE_URL
    return KeyIdForm.REGISTRATION_KID


def parse_sn_ca_key_id(key_id: str) -> tuple[int, str]:
    """Split ``SN=<hex serial>,CA=<issuer DN>`` into ``(serial, issuer DN string)``.

    The issuer DN contains commas itself, so ``CA=`` takes the rest of the string verbatim
    (trimmed of surrounding spaces); comparing it with a certificate's issuer is the resolver's
    job, as banks write DNs in differing orders and spacings. Labels are case-insensitive and a
    space may follow the comma. Raises UnknownKey when the form is malformed, so a bad keyId
    ends as a 401 like any other unmatched one.
    """
    sn_label, sep, rest = key_id.partition("=")
    if not sep or sn_label.strip().upper() != "SN":
        raise UnknownKey("keyId is not of the form SN=<hex serial>,CA=<issuer DN>")
    serial_hex, sep, rest = rest.partition(",")
    serial_hex = serial_hex.strip()
    if not sep or _SERIAL.fullmatch(serial_hex) is None:
        raise UnknownKey("keyId SN= must be a hexadecimal certificate serial number")
    ca_label, sep, issuer = rest.partition("=")
    issuer = issuer.strip()
    if not sep or ca_label.strip().upper() != "CA" or not issuer:
        raise UnknownKey("keyId must continue with CA=<issuer DN>")
    return int(serial_hex, 16), issuer
