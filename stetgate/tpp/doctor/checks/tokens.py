"""Keeping the authorization alive and ending it: refresh (STET v1.4.2 Part I §3.4.3.4,
RFC 6749 §6) and revocation (Part I §3.4.3.5, RFC 7009)."""

from __future__ import annotations

from stetgate.tpp.client import BankError, TokenSet
from stetgate.tpp.doctor.context import NEEDS_TOKENS, UNKNOWN_VALUE, DoctorContext, Rule, check
from stetgate.tpp.doctor.expectations import RefreshRotation
from stetgate.tpp.doctor.model import CheckResult, EvidenceValue, Outcome

NEEDS_REFRESH = "needs a refresh (refresh_issues_new_access_token)"


@check(
    "The refresh grant issues a new, working access token",
    "STET v1.4.2 Part I §3.4.3.4; RFC 6749 §6",
)
def refresh_issues_new_access_token(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part I §3.4.3.4, RFC 6749 §6: the refresh grant over mTLS gives a new
    access token, and the resource API accepts it."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    before = ctx.tokens
    try:
        after = ctx.client.refresh(before)
    except BankError as exc:
        return rule.failed(f"refused: {exc}", status=exc.status, error=exc.oauth_error)
    ctx.first_refresh_token, ctx.tokens = before.refresh_token, after
    if after.access_token == before.access_token:
        return rule.failed("the same access token came back")
    status = ctx.client.signed_request(
        "GET", "accounts", after.access_token, psu_headers=ctx.psu_present
    ).status_code
    if status != 200:
        return rule.failed("the new access token is refused", status=status)
    return rule.passed("new access token works", expires_in=after.expires_in)


@check(
    "The refresh token is kept or rotated as the bank documents",
    "STET v1.4.2 Part I §3.4.3.4; RFC 6749 §6",
)
def refresh_token_rotation_matches_expectation(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part I §3.4.3.4 leaves rotation to the bank (RFC 6749 §6: "MAY issue a new
    refresh token"). BPCE returns the same refresh token (docs/decisions.md#refresh), OAuth 2.1
    §6.1 rotates; the TPP's expectation (a bank profile) says which this bank documents."""
    if ctx.first_refresh_token is None or ctx.tokens is None:
        return rule.skipped(NEEDS_REFRESH)
    rotated = ctx.tokens.refresh_token != ctx.first_refresh_token
    outcome, detail = judge_rotation(ctx.expectations.refresh_rotation, rotated=rotated)
    return rule.result(
        outcome, detail, expected=ctx.expectations.refresh_rotation.value, rotated=rotated
    )


def judge_rotation(expected: RefreshRotation, *, rotated: bool) -> tuple[Outcome, str]:
    seen = "a new refresh token" if rotated else "the same refresh token"
    if expected is RefreshRotation.UNKNOWN:
        return Outcome.INFO, f"the bank returned {seen}"
    if rotated == (expected is RefreshRotation.ROTATED):
        return Outcome.PASS, f"{seen}, as expected"
    return Outcome.FAIL, f"{seen}, but the bank is expected to return {expected.value} one"


@check(
    "Token answers say Bearer and announce the access token's lifetime",
    "RFC 6749 §5.1; RFC 6750 §4; STET v1.4.2 Part I §3.4.3, §3.4.3.4",
)
def token_answers_are_complete(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §5.1: a token answer carries ``token_type`` (REQUIRED; ``Bearer``, RFC 6750 —
    STET tokens are bearer tokens bound to the QWAC, RFC 8705 §3) and ``expires_in``
    (RECOMMENDED: without it the TPP cannot plan its refresh, so its absence differs). The
    lifetimes are reported: STET leaves them to the bank (BPCE: about an hour, and a refresh
    token valid 90 days from the SCA)."""
    answers = [
        a
        for a in ctx.transport.token_answers
        if a.grant_type in ("authorization_code", "refresh_token")
    ]
    if not answers:
        return rule.skipped(NEEDS_TOKENS)
    types = sorted({str(a.token_type) for a in answers})
    if any(str(a.token_type).lower() != "bearer" for a in answers):
        return rule.failed("token_type is not Bearer", token_type=", ".join(types))
    lifetimes = [a.expires_in for a in answers]
    if any(
        not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in lifetimes if v is not None
    ):
        return rule.failed("expires_in is not a positive integer")
    refresh_lifetime = next(
        (a.refresh_token_expires_in for a in answers if a.refresh_token_expires_in is not None),
        None,
    )
    evidence: dict[str, EvidenceValue] = {
        "answers": len(answers),
        "access_expires_in": ", ".join(sorted({str(v) for v in lifetimes})),
        "refresh_token_expires_in": None if refresh_lifetime is None else str(refresh_lifetime),
    }
    if None in lifetimes:
        return rule.differs("expires_in missing: the TPP must guess when to refresh", **evidence)
    return rule.passed("Bearer, with the access token's lifetime", **evidence)


@check(
    "An unknown refresh token is refused with invalid_grant",
    "RFC 6749 §5.2; STET v1.4.2 Part I §3.4.3.4",
)
def unknown_refresh_token_is_refused(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RFC 6749 §5.2: a refresh token the bank did not issue (or revoked) is ``invalid_grant``
    — the answer that tells a TPP a new SCA is needed."""
    unknown = TokenSet("unused", UNKNOWN_VALUE, 0, "aisp")
    try:
        ctx.client.refresh(unknown)
    except BankError as exc:
        if exc.status == 400 and exc.oauth_error == "invalid_grant":
            return rule.passed("400 invalid_grant")
        return rule.failed("expected 400 invalid_grant", status=exc.status, error=exc.oauth_error)
    return rule.failed("tokens issued for an unknown refresh token")


@check(
    "Revoking the refresh token ends the authorization",
    "STET v1.4.2 Part I §3.4.3.5; RFC 7009 §2.1, §2.2",
)
def revocation_revokes_the_pair(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part I §3.4.3.5 and RFC 7009 §2.1: revoking the refresh token ends the
    authorization — the refresh token is refused, and the access tokens of the same grant
    SHOULD be (BPCE revokes both); an access token still working differs."""
    tokens = ctx.tokens
    if tokens is None or tokens.refresh_token is None:
        return rule.skipped(NEEDS_TOKENS)
    try:
        ctx.client.revoke(tokens.refresh_token, "refresh_token")
    except BankError as exc:
        return rule.failed("revocation refused", status=exc.status)
    ctx.revoked = True
    try:
        ctx.client.refresh(tokens)
    except BankError as exc:
        refresh_error = exc.oauth_error
    else:
        return rule.failed("the revoked refresh token still refreshes")
    access = ctx.client.signed_request(
        "GET", "accounts", tokens.access_token, psu_headers=ctx.psu_present
    ).status_code
    if access != 401:
        return rule.differs(
            "the refresh token is revoked, the access token still works until it expires",
            access_status=access,
        )
    return rule.passed("both tokens refused", refresh_error=refresh_error, access_status=access)
