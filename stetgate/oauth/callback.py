"""The redirect back to the TPP's callback, in every outcome (docs/decisions.md#callback-outcomes).

RFC 6749 §4.1.2 (success: ``code``, ``state``) and §4.1.2.1 (error: ``error``,
``error_description``, ``state``), plus RFC 9207 §2 ``iss`` on every response so a TPP talking
to several banks can tell which one answered (mix-up defence). The registered URI's own query
is kept (RFC 6749 §3.1.2: "MUST retain the query component when adding additional query
parameters"); its fragment is never set (§3.1.2).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from stetgate.oauth.error_text import error_description

# error_description values the PSU pages produce (docs/decisions.md#callback-outcomes)
CONSENT_REFUSED = "consent_refused"
AUTHENTICATION_FAILED = "authentication_failed"
TIMEOUT = "timeout"
PSU_CANCELLED = "cancelled"
"""The PSU left with "Cancel" before deciding: an interruption, not a refused consent."""


def _with_query(redirect_uri: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(redirect_uri)
    added = urlencode(params)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def success_redirect(redirect_uri: str, *, code: str, state: str | None, issuer: str) -> str:
    """``code=…&state=…&iss=…`` (RFC 6749 §4.1.2, RFC 9207 §2)."""
    params = [("code", code)]
    if state is not None:
        params.append(("state", state))
    params.append(("iss", issuer))
    return _with_query(redirect_uri, params)


def error_redirect(
    redirect_uri: str, *, error: str, description: str | None, state: str | None, issuer: str
) -> str:
    """``error=…&error_description=…&state=…&iss=…`` (RFC 6749 §4.1.2.1, RFC 9207 §2)."""
    params = [("error", error)]
    if description:
        params.append(("error_description", error_description(description)))
    if state is not None:
        params.append(("state", state))
    params.append(("iss", issuer))
    return _with_query(redirect_uri, params)


def redirect_origin(redirect_uri: str) -> str | None:
    """The CSP source expression (CSP3 §2.3.1) matching the callback, for ``form-action``:
    Chrome applies ``form-action`` to the redirects that follow a form submission, so a form
    whose answer is a 303 to the TPP must allow the TPP's origin. None when the URI does not
    give a clean origin (the form then falls back to 'self' only)."""
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return None
    if scheme in ("http", "https"):
        host = parts.netloc.rsplit("@", 1)[-1]
        if not host or any(ch in host for ch in " ;,'\"\\") or not host.isascii():
            return None
        return f"{scheme}://{host}"
    return f"{scheme}:"
