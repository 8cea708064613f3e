"""Is a ``redirect_uri`` of an authorization request registered for the client?

RFC 6749 §3.1.2.3 asks for a comparison with the registered URIs; stetgate compares strings
exactly (no normalisation, so nothing "equivalent" slips through), with the one exception RFC
8252 §7.3 requires: for a loopback IP literal (``127.0.0.1``, ``[::1]``) "the authorization
server MUST allow any port to be specified at the time of the request", because a native
app — the TPP kit's `stetgate tpp authorize --listen` — gets its listening port from the
operating system. Only the port may differ; scheme, host literal, path and query must be the
registered ones, and ``localhost`` gets no exception (RFC 8252 §8.3). A redirect to the
loopback reaches only the PSU's own device, so the open-redirector concern of §3.1.2.3 does
not arise. Plain string work: a few microseconds, on ``/authorize`` only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_LOOPBACK = re.compile(
    r"^(?P<scheme>https?)://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<rest>[/?].*)?$",
    re.DOTALL,
)
_MAX_PORT = 65535


def _loopback_without_port(uri: str) -> tuple[str, str, str] | None:
    """(scheme, host, path-and-query) of a loopback IP literal URI with a valid port or none."""
    match = _LOOPBACK.match(uri)
    if match is None or "#" in uri:
        return None
    port = match.group("port")
    if port is not None and int(port) > _MAX_PORT:
        return None
    return match.group("scheme"), match.group("host"), match.group("rest") or ""


def is_registered_redirect(redirect_uri: str, registered: Sequence[str]) -> bool:
    if redirect_uri in registered:
        return True
    requested = _loopback_without_port(redirect_uri)
    if requested is None:
        return False
    return any(_loopback_without_port(uri) == requested for uri in registered)
