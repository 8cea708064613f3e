"""The order of the checks, and one run of them against one bank.

The order follows the cinematic and what each check hands the next: checks that need no PSU
first; the PSU journeys, then the code exchange; the resource API while the tokens are fresh;
refresh; revocation; the code replay last among the token checks, once nothing live depends on
the code's tokens (a bank that revokes them on replay, as RFC 6749 §10.5 asks, would otherwise
end the run); and the ``X-Request-ID`` echo over every exchange of the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from stetgate.tpp.client import BankError
from stetgate.tpp.doctor.checks import authorization, endpoints, resources, tokens
from stetgate.tpp.doctor.context import Check, DoctorContext
from stetgate.tpp.doctor.model import CheckResult, DoctorReport
from stetgate.tpp.psu_robot import PsuJourneyError

CHECKS: Sequence[Check] = (
    endpoints.metadata_is_published,
    endpoints.token_endpoint_requires_client_certificate,
    endpoints.token_errors_are_oauth_json,
    endpoints.authorize_refuses_unregistered_redirect_uri,
    endpoints.revoking_an_unknown_token_answers_200,
    authorization.psu_journey_reaches_callback,
    authorization.callback_returns_state,
    authorization.callback_carries_issuer,
    authorization.refused_consent_returns_access_denied,
    authorization.code_exchange_over_mtls,
    resources.consent_is_accepted,
    resources.accounts_follow_schema,
    resources.balances_follow_schema,
    resources.transactions_follow_schema,
    resources.end_user_identity_follows_schema,
    resources.trusted_beneficiaries_follow_schema,
    resources.funds_confirmation_follows_schema,
    resources.requests_must_be_signed,
    resources.errors_use_stet_error_model,
    resources.unattended_access_is_limited,
    tokens.refresh_issues_new_access_token,
    tokens.refresh_token_rotation_matches_expectation,
    tokens.token_answers_are_complete,
    tokens.unknown_refresh_token_is_refused,
    tokens.revocation_revokes_the_pair,
    authorization.code_is_single_use,
    resources.request_id_is_echoed,
)


def run_doctor(ctx: DoctorContext, checks: Sequence[Check] = CHECKS) -> DoctorReport:
    """Run ``checks`` in order; a check the bank's transport or answers break is a failure of
    that check, and the run goes on."""
    started = ctx.clock.now()
    results = [_run_one(check, ctx) for check in checks]
    _end_authorizations(ctx)
    expected = ctx.expectations
    return DoctorReport(
        ctx.bank_url,
        started,
        tuple(results),
        {
            "refresh_rotation": expected.refresh_rotation.value,
            "unattended_limit": expected.unattended_limit,
            "code_lifetime_seconds": expected.code_lifetime_seconds,
        },
    )


def _run_one(check: Check, ctx: DoctorContext) -> CheckResult:
    try:
        return check(ctx)
    except (httpx.HTTPError, BankError, PsuJourneyError, ValueError, KeyError, TypeError) as exc:
        return check.rule.failed(f"the check could not complete: {exc.__class__.__name__}: {exc}")


def _end_authorizations(ctx: DoctorContext) -> None:
    """Revoke what the run still holds: a doctor leaves no live token at the bank."""
    live = [t for t in (ctx.cbpii_tokens, None if ctx.revoked else ctx.tokens) if t is not None]
    for held in live:
        try:
            ctx.client.revoke(held.refresh_token or held.access_token)
        except (BankError, httpx.HTTPError):
            continue
