"""The one policy for what a client registers as its redirect URIs and its name, whichever way
it is registered: ``stetgate clients add`` (Go-Live, :mod:`stetgate.registry.cli`) and the
register API (RFC 7591, :mod:`stetgate.registry.metadata_rules`).

Refusals raise the register API's errors, one class per error:
:class:`~stetgate.registry.errors.InvalidRedirectUri` and
:class:`~stetgate.registry.errors.InvalidClientMetadata`; the API renders them as RFC 7591
§3.2.2 JSON, the CLI prints their description and exits non-zero.

Redirect URIs (RFC 6749 §3.1.2, RFC 9700 §2.1 and §4.1): absolute, without fragment, user
information or wildcard, matched byte for byte at ``/authorize`` so stored verbatim; only
visible ASCII without backslash (RFC 3986 has no other characters, and two spellings of one
URI must not both match); ``https`` in lower case, except ``http`` to a loopback IP literal
(RFC 8252 §7.3; ``localhost`` is refused, §8.3).

The client name is shown to PSUs on the consent page: trimmed, NFC-normalised, without
control or invisible formatting characters (a bidi override could disguise it) and without a
word mixing look-alike alphabets (UTS #39 §5.2), unique regardless of case and spacing
(`name_key`), and not confusable with another organization's client name (UTS #39 §4
skeletons, :mod:`stetgate.registry.confusables`); both are checked against the client table
by `require_free_name`. The consent page also shows the organization's legal name and
organizationIdentifier from its certificate, which no registration can choose.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from stetgate.registry.confusables import confusable_names, mixed_script_word
from stetgate.registry.errors import InvalidClientMetadata, InvalidRedirectUri
from stetgate.store.schema import clients

MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2000
MAX_CLIENT_NAME = 200
"""``clients.name`` is String(200)."""

_LOOPBACK_IPS = frozenset({"127.0.0.1", "::1"})
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
"""Control, format (bidi overrides, zero-width), line/paragraph separators, surrogates,
private use and unassigned code points."""


def redirect_uris_of(value: Any) -> tuple[str, ...]:
    """A non-empty list of at most `MAX_REDIRECT_URIS` redirect URIs, each passing
    `check_redirect_uri`; duplicates are dropped, order is kept."""
    if not isinstance(value, list) or not value:
        raise InvalidRedirectUri(
            "redirect_uris is required: a non-empty list of https URIs",
            reason="redirect_uris_missing",
        )
    if len(value) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(
            f"at most {MAX_REDIRECT_URIS} redirect_uris", reason="redirect_uris_too_many"
        )
    for uri in value:
        check_redirect_uri(uri)
    return tuple(dict.fromkeys(value))


def check_redirect_uri(uri: Any) -> None:
    """Raise InvalidRedirectUri unless ``uri`` is a redirection URI stetgate will redirect to."""
    if not isinstance(uri, str) or not uri:
        raise InvalidRedirectUri(
            "every redirect URI must be a non-empty string", reason="redirect_uri_invalid"
        )
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidRedirectUri(
            f"redirect URI {_quote(uri)} is too long (at most {MAX_URI_LENGTH} characters)",
            reason="redirect_uri_invalid",
        )
    if any(not "!" <= c <= "~" or c == "\\" for c in uri):
        raise InvalidRedirectUri(
            f"redirect URI {_quote(uri)} has forbidden characters: only visible ASCII without "
            "spaces or backslashes (RFC 3986)",
            reason="redirect_uri_invalid",
        )
    if "#" in uri:
        raise InvalidRedirectUri(
            f"redirect URI {_quote(uri)} must not contain a fragment (RFC 6749 §3.1.2)",
            reason="redirect_uri_fragment",
        )
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise InvalidRedirectUri(
            f"redirect URI {_quote(uri)} is not a valid URI", reason="redirect_uri_invalid"
        ) from None
    host = parts.hostname or ""
    if not host or "@" in parts.netloc or "*" in host or port == 0:
        raise InvalidRedirectUri(
            f"redirect URI {_quote(uri)} needs a host (and a port other than 0), without user "
            "information or wildcards",
            reason="redirect_uri_invalid",
        )
    if uri.startswith("https://"):
        return
    if uri.startswith("http://") and _is_loopback_ip(host):
        return
    raise InvalidRedirectUri(
        f"redirect URI {_quote(uri)} must use https (http only to 127.0.0.1 or [::1], "
        "RFC 8252 §7.3)",
        reason="redirect_uri_not_https",
    )


def client_name_of(value: Any) -> str:
    """The name PSUs see: required, trimmed, NFC-normalised, at most `MAX_CLIENT_NAME`
    characters, no control or invisible formatting characters, no word mixing look-alike
    alphabets (``Pаypal`` with a Cyrillic ``а``, `mixed_script_word`)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidClientMetadata(
            "client_name is required: the name PSUs see on the consent page",
            reason="client_name_missing",
        )
    name = unicodedata.normalize("NFC", value.strip())
    if len(name) > MAX_CLIENT_NAME:
        raise InvalidClientMetadata(
            f"client_name is longer than {MAX_CLIENT_NAME} characters", reason="client_name_invalid"
        )
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in name):
        raise InvalidClientMetadata(
            "client_name contains control or invisible characters", reason="client_name_invalid"
        )
    mixed = mixed_script_word(name)
    if mixed is not None:
        raise InvalidClientMetadata(
            f"client_name word {mixed[:40]!r} mixes letters of different alphabets that look "
            "alike (UTS #39 §5.2)",
            reason="client_name_mixed_script",
        )
    return name


def name_key(name: str) -> str:
    """Uniqueness key of a client name: two names PSUs could not tell apart by case or
    spacing are the same name."""
    return " ".join(name.casefold().split())


def require_free_name(
    conn: Connection, name: str, *, org_id: str, except_client_id: str | None = None
) -> None:
    """Raise InvalidClientMetadata when another client (Go-Live or registered) already has a
    name with the same `name_key` (``client_name`` is unique, BPCE, and is what PSUs choose
    by), or when a client of another organization has a name a PSU could take for this one
    (`confusable_names`: equal UTS #39 skeletons). An organization may name its own clients
    alike. The client table is small (one row per TPP application), so comparing in Python
    is cheap and exact for every alphabet, where SQL ``lower()`` differs between SQLite and
    PostgreSQL."""
    wanted = name_key(name)
    rows = conn.execute(select(clients.c.client_id, clients.c.org_id, clients.c.name))
    for client_id, owner, existing in rows:
        if client_id == except_client_id:
            continue
        if name_key(existing) == wanted:
            raise name_taken(name)
        if owner != org_id and confusable_names(existing, name):
            raise InvalidClientMetadata(
                f"client_name {name[:60]!r} can be mistaken for the name of another "
                "organization's application (Unicode confusables, UTS #39 §4)",
                reason="client_name_confusable",
            )


def name_taken(name: str) -> InvalidClientMetadata:
    return InvalidClientMetadata(
        f"client_name {name[:60]!r} is already registered; it must be "
        "unique because PSUs choose by it",
        reason="client_name_taken",
    )


def _is_loopback_ip(host: str) -> bool:
    try:
        return str(ipaddress.ip_address(host)) in _LOOPBACK_IPS
    except ValueError:
        return False


def _quote(uri: str) -> str:
    return repr(uri[:100])


__all__ = [
    "MAX_CLIENT_NAME",
    "MAX_REDIRECT_URIS",
    "MAX_URI_LENGTH",
    "check_redirect_uri",
    "client_name_of",
    "name_key",
    "name_taken",
    "redirect_uris_of",
    "require_free_name",
]
