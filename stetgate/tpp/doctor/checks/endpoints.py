"""Discovery and the OAuth endpoints, judged before any PSU is involved."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from stetgate.tpp.client import AuthorizationRequest, BankError
from stetgate.tpp.doctor.context import UNKNOWN_VALUE, DoctorContext, Rule, check
from stetgate.tpp.doctor.model import CheckResult

FOREIGN_REDIRECT_URI = "https://doctor.invalid/callback"
"""A redirect URI no client registered (``.invalid``: RFC 2606 §2, resolves nowhere)."""
MTLS_REFUSALS = frozenset({"invalid_client", "invalid_request", "unauthorized_client"})


@check(
    "Authorization server metadata is published",
    "RFC 8414 §2, §3 (not required by STET v1.4.2 Part I §3.4)",
)
def metadata_is_published(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 8414 §3: ``/.well-known/oauth-authorization-server`` with ``issuer``,
    ``authorization_endpoint`` and ``token_endpoint`` (§2). STET v1.4.2 Part I §3.4 does not
    require discovery, so a bank without it differs rather than fails."""
    try:
        metadata = ctx.client.metadata()
    except BankError as exc:
        return rule.differs("no metadata document: STET does not require one", status=exc.status)
    except ValueError:
        return rule.failed("the metadata document is not JSON")
    missing = [
        name
        for name in ("issuer", "authorization_endpoint", "token_endpoint")
        if not isinstance(metadata.get(name), str)
    ]
    if missing:
        return rule.failed(f"required members missing: {', '.join(missing)}")
    issuer = httpx.URL(metadata["issuer"])
    if issuer.scheme != "https" or issuer.query or issuer.fragment:
        return rule.failed("issuer must be an https URL without query or fragment (RFC 8414 §2)")
    ctx.metadata = metadata
    return rule.passed(
        "metadata published",
        issuer=metadata["issuer"],
        iss_parameter_supported=bool(
            metadata.get("authorization_response_iss_parameter_supported")
        ),
    )


@check(
    "The token endpoint refuses a caller without a client certificate",
    "STET v1.4.2 Part I §3.2; RFC 8705 §2",
)
def token_endpoint_requires_client_certificate(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part I §3.2 and RFC 8705 §2: the token endpoint authenticates the TPP by its
    QWAC; a call without a client certificate is refused (in the TLS handshake, or with
    ``invalid_client``)."""
    form = {
        "grant_type": "authorization_code",
        "code": UNKNOWN_VALUE,
        "redirect_uri": FOREIGN_REDIRECT_URI,
        "client_id": ctx.client_id,
    }
    try:
        with ctx.anonymous_http() as http:
            response = http.post(ctx.endpoint_url(ctx.client.profile.endpoints.token), data=form)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
        return rule.passed("refused in the TLS handshake", error=exc.__class__.__name__)
    error = _oauth_error(response)
    if response.is_success:
        return rule.failed(
            "tokens issued without a client certificate", status=response.status_code
        )
    if response.status_code == 401 or error in MTLS_REFUSALS:
        return rule.passed("refused", status=response.status_code, error=error)
    return rule.differs(
        "refused, but not as a client-authentication failure: the certificate may be checked "
        "after the code",
        status=response.status_code,
        error=error,
    )


@check(
    "Token endpoint errors are OAuth JSON (invalid_grant for an unknown code)",
    "RFC 6749 §5.2; STET v1.4.2 Part I §3.4.3",
)
def token_errors_are_oauth_json(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §5.2: a refused token request is HTTP 400 with a JSON body whose ``error`` is
    the OAuth code — here ``invalid_grant`` for a code the bank never issued."""
    request = AuthorizationRequest("", "doctor", None, FOREIGN_REDIRECT_URI, "aisp")
    # With the bank's own iss: the client's callback checks (RFC 9207) must let it through
    # to the token endpoint, whose answer is what this check judges.
    query = urlencode({"code": UNKNOWN_VALUE, "state": "doctor", "iss": ctx.issuer})
    callback = f"{FOREIGN_REDIRECT_URI}?{query}"
    try:
        ctx.client.exchange_code(request, callback, expected_issuer=ctx.issuer)
    except BankError as exc:
        if exc.status == 400 and exc.oauth_error == "invalid_grant":
            return rule.passed("400 invalid_grant", status=exc.status)
        return rule.failed(
            "expected 400 with error=invalid_grant", status=exc.status, error=exc.oauth_error
        )
    return rule.failed("an unknown code was redeemed")


@check(
    "/authorize never redirects to an unregistered redirect URI",
    "RFC 6749 §4.1.2.1, §10.6; STET v1.4.2 Part I §3.4.3",
)
def authorize_refuses_unregistered_redirect_uri(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §4.1.2.1 and §10.6: with a redirect URI the client did not register, the bank
    shows an error and MUST NOT send the browser there (an open redirector leaks codes)."""
    request = ctx.client.authorization_request("aisp", FOREIGN_REDIRECT_URI)
    with ctx.anonymous_http() as browser:
        response = browser.get(request.url, follow_redirects=False)
    location = response.headers.get("location", "")
    if response.is_redirect and location.startswith(FOREIGN_REDIRECT_URI):
        return rule.failed(
            "the browser is sent to the unregistered URI", status=response.status_code
        )
    if response.is_success or response.is_redirect:
        return rule.differs(
            "no error shown at once (the bank may check later in the journey)",
            status=response.status_code,
        )
    return rule.passed("refused without redirecting", status=response.status_code)


@check(
    "Revoking an unknown token answers 200",
    "RFC 7009 §2.2; STET v1.4.2 Part I §3.4.3.5",
)
def revoking_an_unknown_token_answers_200(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 7009 §2.2: "invalid tokens do not cause an error response" — revocation answers 200
    so the TPP learns nothing about tokens it does not hold."""
    try:
        ctx.client.revoke(UNKNOWN_VALUE, "refresh_token")
    except BankError as exc:
        return rule.failed("an unknown token is answered with an error", status=exc.status)
    return rule.passed("200")


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error is not None else None
