"""The PSU journey, the callback and the authorization code (STET v1.4.2 Part I §3.4.3,
steps 2 to 5 of the cinematic)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from stetgate.tpp.client import BankError, TokenSet
from stetgate.tpp.doctor.context import NEEDS_TOKENS, DoctorContext, Rule, check
from stetgate.tpp.doctor.journeys import Walked
from stetgate.tpp.doctor.model import CheckResult, Outcome
from stetgate.tpp.psu_robot import PsuJourneyError

NEEDS_JOURNEY = "needs the PSU journey (psu_journey_reaches_callback)"


def callback_parameters(walked: Walked) -> dict[str, str]:
    """The callback's query parameters (first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(walked.callback_url).query).items()}


@check(
    "The PSU journey ends on the TPP's callback",
    "STET v1.4.2 Part I §3.4.3",
)
def psu_journey_reaches_callback(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part I §3.4.3: the PSU authenticates with SCA at the bank, which redirects
    the browser to the TPP's registered redirect URI. An automated PSU also refuses one
    journey (for the error callback) and authorizes a CBPII one; the AISP one comes last, so
    its code is fresh for the code checks."""
    journeys = 1
    try:
        if ctx.journey.automated:
            ctx.refused = ctx.journey.walk(ctx.client, "aisp", refuse=True)
            ctx.cbpii = ctx.journey.walk(ctx.client, "cbpii")
            journeys = 3
        ctx.aisp = ctx.journey.walk(ctx.client, "aisp")
    except PsuJourneyError as exc:
        return rule.failed(f"the journey stopped: {exc}")
    ctx.aisp_callback_at = ctx.clock.now()
    return rule.passed("the bank redirected to the callback", journeys=journeys)


@check(
    "The callback returns the request's state",
    "RFC 6749 §4.1.2, §4.1.2.1, §10.12; STET v1.4.2 Part I §3.4.3",
)
def callback_returns_state(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §4.1.2 and §10.12: the callback carries the ``state`` the TPP sent, exactly,
    on success and on error (§4.1.2.1) — the TPP's only CSRF protection."""
    walked = [w for w in (ctx.aisp, ctx.refused, ctx.cbpii) if w is not None]
    if not walked:
        return rule.skipped(NEEDS_JOURNEY)
    wrong = sum(callback_parameters(w).get("state") != w.request.state for w in walked)
    if wrong:
        return rule.failed(f"{wrong} of {len(walked)} callbacks lack the request's state")
    return rule.passed("state returned", callbacks=len(walked))


@check(
    "The callback carries iss, the bank's issuer",
    "RFC 9207 §2, §3 (after STET v1.4.2 Part I §3.4.3)",
)
def callback_carries_issuer(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 9207 §2: ``iss`` on every authorization response (success and error) lets a TPP
    that talks to several banks detect a mix-up. A bank announcing
    ``authorization_response_iss_parameter_supported`` MUST send it (§3); STET v1.4.2 predates
    RFC 9207, so a bank that neither announces nor sends it differs."""
    walked = [w for w in (ctx.aisp, ctx.refused) if w is not None]
    if not walked:
        return rule.skipped(NEEDS_JOURNEY)
    announced = bool((ctx.metadata or {}).get("authorization_response_iss_parameter_supported"))
    values = [callback_parameters(w).get("iss") for w in walked]
    outcome, detail = judge_issuers(values, ctx.issuer, announced=announced)
    return rule.result(outcome, detail, expected=ctx.issuer, announced=announced)


def judge_issuers(
    values: Sequence[str | None], issuer: str, *, announced: bool
) -> tuple[Outcome, str]:
    """``values``: the ``iss`` of each callback (None: absent)."""
    if any(value is not None and value != issuer for value in values):
        return Outcome.FAIL, "iss is not the bank's issuer (a mix-up, RFC 9207 §2.4)"
    missing = values.count(None)
    if not missing:
        return Outcome.PASS, f"iss present and equal to the issuer in {len(values)} callbacks"
    if announced:
        return Outcome.FAIL, (
            f"{missing} of {len(values)} callbacks lack iss although the metadata announces it"
        )
    return Outcome.DIFFERS, f"{missing} of {len(values)} callbacks lack iss (not announced)"


@check(
    "A refused consent comes back as error=access_denied",
    "RFC 6749 §4.1.2.1; STET v1.4.2 Part I §3.4.3",
)
def refused_consent_returns_access_denied(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §4.1.2.1: when the PSU refuses, the callback carries ``error=access_denied``
    (and no code)."""
    if not ctx.journey.automated:
        return rule.skipped("needs the PSU robot (the human journey only authorizes)")
    if ctx.refused is None:
        return rule.skipped(NEEDS_JOURNEY)
    params = callback_parameters(ctx.refused)
    if "code" in params:
        return rule.failed("a code was issued although the PSU refused")
    if params.get("error") != "access_denied":
        return rule.failed("expected error=access_denied", error=params.get("error"))
    return rule.passed("error=access_denied", error_description=params.get("error_description"))


@check(
    "The code is redeemed for an access and a refresh token over mTLS",
    "STET v1.4.2 Part I §3.4.3; RFC 6749 §4.1.3, §5.1; RFC 8705 §2",
)
def code_exchange_over_mtls(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part I §3.4.3 (step 5) and RFC 6749 §4.1.3/§5.1: the code is redeemed at the
    token endpoint over mutual TLS with the QWAC (RFC 8705 §2) for an access token, its
    lifetime and the refresh token the TPP keeps (STET: 90 days)."""
    if ctx.aisp is None:
        return rule.skipped(NEEDS_JOURNEY)
    try:
        ctx.tokens = _exchange(ctx, ctx.aisp)
        if ctx.cbpii is not None:
            ctx.cbpii_tokens = _exchange(ctx, ctx.cbpii)
    except BankError as exc:
        return rule.failed(f"refused: {exc}", status=exc.status, error=exc.oauth_error)
    tokens = ctx.tokens
    if not tokens.refresh_token:
        return rule.failed("no refresh token: the TPP could not keep the authorization")
    if tokens.expires_in <= 0:
        return rule.failed("expires_in is not a positive lifetime", expires_in=tokens.expires_in)
    return rule.passed("tokens issued", expires_in=tokens.expires_in, scope=tokens.scope)


@check(
    "A redeemed code is refused the second time",
    "RFC 6749 §4.1.2, §10.5; STET v1.4.2 Part I §3.4.3",
)
def code_is_single_use(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §4.1.2 and §10.5: a code works once; a second redemption is ``invalid_grant``
    (and SHOULD revoke what the first one issued). Run last among the code checks, after
    revocation, and only while the code is younger than its lifetime, so a refusal cannot be
    an expiry."""
    if ctx.aisp is None or ctx.tokens is None or ctx.aisp_callback_at is None:
        return rule.skipped(NEEDS_TOKENS)
    age = (ctx.clock.now() - ctx.aisp_callback_at).total_seconds()
    if age >= ctx.expectations.code_lifetime_seconds:
        return rule.skipped(
            f"the code is {age:.0f} s old, beyond its lifetime: a refusal would prove nothing"
        )
    try:
        replayed = _exchange(ctx, ctx.aisp)
    except BankError as exc:
        if exc.status == 400 and exc.oauth_error == "invalid_grant":
            return rule.passed("second redemption refused", status=exc.status)
        return rule.failed(
            "refused, but not with 400 invalid_grant", status=exc.status, error=exc.oauth_error
        )
    _revoke_quietly(ctx, replayed)
    return rule.failed("the code was redeemed a second time")


def _exchange(ctx: DoctorContext, walked: Walked) -> TokenSet:
    """Redeem the journey's code whatever its ``iss``: that is `callback_carries_issuer`'s
    to judge, and the client would refuse a callback without ``iss`` from a bank announcing
    it (RFC 9207 §2.4) before the token endpoint could be judged here. So the callback is
    redeemed with the ``iss`` it carries, or the issuer's where it carries none."""
    callback = walked.callback_url
    issuer = callback_parameters(walked).get("iss")
    if issuer is None:
        issuer = ctx.issuer
        parts = urlsplit(callback)
        query = (
            f"{parts.query}&{urlencode({'iss': issuer})}"
            if parts.query
            else urlencode({"iss": issuer})
        )
        callback = urlunsplit(parts._replace(query=query))
    return ctx.client.exchange_code(walked.request, callback, expected_issuer=issuer)


def _revoke_quietly(ctx: DoctorContext, tokens: TokenSet) -> None:
    """Leave no live token behind a failed check."""
    with contextlib.suppress(BankError):
        ctx.client.revoke(tokens.refresh_token or tokens.access_token)
