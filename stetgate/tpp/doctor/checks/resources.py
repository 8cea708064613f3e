"""The STET AISP/CBPII resource API (STET v1.4.2 Part II), every call signed with the QSealC
and bound to the QWAC; answers validated against the STET 1.4.2 schemas."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from stetgate.tpp.client import TokenSet
from stetgate.tpp.doctor import stet_schemas as schemas
from stetgate.tpp.doctor.context import NEEDS_TOKENS, UNKNOWN_VALUE, DoctorContext, Rule, check
from stetgate.tpp.doctor.model import CheckResult
from stetgate.tpp.doctor.recording import REQUEST_ID, Exchange

NEEDS_ACCOUNTS = "needs the account list (accounts_follow_schema)"
UNKNOWN_ACCOUNT = "doctor-unknown-account"


@check(
    "PUT /consents forwards the PSU's choices",
    "STET v1.4.2 Part II §4.1",
)
def consent_is_accepted(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §4.1 (AISP-mix): the TPP forwards the PSU's choices with
    ``PUT /consents`` before balances, transactions, identity or beneficiaries are read."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    listed = _send(ctx, "GET", "accounts", ctx.tokens)
    if listed.status_code != 200:
        return rule.failed("GET /accounts before the consent failed", status=listed.status_code)
    ids = [a["accountId"] for a in _json(listed).get("accounts", []) if "accountId" in a]
    body = {
        "balances": ids,
        "transactions": ids,
        "psuIdentity": True,
        "trustedBeneficiaries": True,
    }
    response = _send(ctx, "PUT", "consents", ctx.tokens, body=body)
    if response.status_code not in (200, 201, 204):
        return rule.failed("consent refused", status=response.status_code)
    return rule.passed("consent accepted", status=response.status_code, accounts=len(ids))


@check(
    "GET /accounts follows the STET schema",
    "STET v1.4.2 Part II §4 (AccountResource)",
)
def accounts_follow_schema(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §4 (AccountResource): ``GET /accounts`` lists the PSU's accounts
    with their identifiers, balances (once consented) and HAL links."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    response = _send(ctx, "GET", "accounts", ctx.tokens)
    found = _judge(rule, response, schemas.ACCOUNTS)
    if found.outcome.value == "pass":
        ctx.accounts = list(_json(response)["accounts"])
    return found


@check(
    "GET /accounts/{id}/balances follows the STET schema",
    "STET v1.4.2 Part II §4 (BalancesResource)",
)
def balances_follow_schema(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §4 (BalancesResource): ``GET /accounts/{id}/balances`` of a
    consented account, reached by its HAL link."""
    return _account_resource(ctx, rule, "balances", schemas.BALANCES)


@check(
    "GET /accounts/{id}/transactions follows the STET schema",
    "STET v1.4.2 Part II §4 (TransactionsResource)",
)
def transactions_follow_schema(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §4 (TransactionsResource): ``GET /accounts/{id}/transactions``,
    paged with HAL links."""
    return _account_resource(ctx, rule, "transactions", schemas.TRANSACTIONS)


@check(
    "GET /end-user-identity follows the STET schema",
    "STET v1.4.2 Part II §4.6.4",
)
def end_user_identity_follows_schema(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §4.6.4: ``GET /end-user-identity`` names the connected PSU."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    return _judge(
        rule, _send(ctx, "GET", "end-user-identity", ctx.tokens), schemas.END_USER_IDENTITY
    )


@check(
    "GET /trusted-beneficiaries follows the STET schema",
    "STET v1.4.2 Part II §4 (BeneficiariesResource, optional)",
)
def trusted_beneficiaries_follow_schema(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §4 (trusted beneficiaries): optional for a bank, so "not offered"
    differs rather than fails."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    response = _send(ctx, "GET", "trusted-beneficiaries", ctx.tokens)
    if response.status_code in (404, 405, 501):
        return rule.differs("not offered by this bank", status=response.status_code)
    return _judge(rule, response, schemas.BENEFICIARIES)


@check(
    "POST /funds-confirmations follows the STET schema",
    "STET v1.4.2 Part II (CBPII, FundsConfirmationResource)",
)
def funds_confirmation_follows_schema(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II, CBPII: ``POST /funds-confirmations`` with a CBPII token answers
    the request and a boolean ``result``."""
    if ctx.cbpii_tokens is None:
        return rule.skipped("needs a CBPII token (the PSU robot's CBPII journey)")
    account = next((a["accountId"] for a in ctx.accounts if "iban" in a.get("accountId", {})), None)
    if account is None:
        return rule.skipped(NEEDS_ACCOUNTS)
    body = {
        "paymentCoverageRequestId": uuid.uuid4().hex[:30],
        "instructedAmount": {"currency": "EUR", "amount": "1.00"},
        "accountId": {"iban": account["iban"]},
    }
    response = _send(ctx, "POST", "funds-confirmations", ctx.cbpii_tokens, body=body)
    return _judge(rule, response, schemas.FUNDS_CONFIRMATION)


@check(
    "Unsigned and tampered requests are refused with 401",
    "STET v1.4.2 Part II §3; draft-cavage-http-signatures-12 §2.5",
)
def requests_must_be_signed(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §3: every call carries an HTTP signature made with the TPP's
    QSealC over ``(request-target)``, ``x-request-id``, ``digest`` and the ``psu-*`` headers.
    A bank must refuse (401) a call without one, and one whose signed header was changed
    after signing — checking the header's presence is not verifying it."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)

    def drop_signature(request: httpx.Request) -> None:
        del request.headers["Signature"]

    def change_signed_header(request: httpx.Request) -> None:
        request.headers[REQUEST_ID] = str(uuid.uuid4())

    ctx.transport.alter_next(drop_signature)
    unsigned = _send(ctx, "GET", "accounts", ctx.tokens).status_code
    ctx.transport.alter_next(change_signed_header)
    tampered = _send(ctx, "GET", "accounts", ctx.tokens).status_code
    if unsigned == 401 and tampered == 401:
        return rule.passed("both refused", unsigned=unsigned, tampered=tampered)
    return rule.failed(
        "the bank answered a request whose signature it did not verify",
        unsigned=unsigned,
        tampered=tampered,
    )


@check(
    "Resource-API errors use the STET error structure",
    "STET v1.4.2 Part II §3 (ErrorModel)",
)
def errors_use_stet_error_model(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §3 (generic error structure): an error answer is JSON with
    ``status`` (the HTTP status) and ``message``, optionally ``timestamp``, ``error`` and
    ``path`` — probed with an unknown account and an unknown access token."""
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    unknown_token = TokenSet(UNKNOWN_VALUE, None, 0, "aisp")
    probes = {
        "unknown account": _send(ctx, "GET", f"accounts/{UNKNOWN_ACCOUNT}/balances", ctx.tokens),
        "unknown token": _send(ctx, "GET", "accounts", unknown_token),
    }
    for name, response in probes.items():
        problem = error_body_problem(response)
        if problem is not None:
            return rule.failed(f"{name}: {problem}", status=response.status_code)
    return rule.passed(
        "error bodies follow the structure",
        **{f"{name} status": r.status_code for name, r in probes.items()},
    )


@check(
    "Unattended calls are limited per day",
    "RTS (EU) 2018/389 Art. 36(5)(b); STET v1.4.2 Part II §3",
)
def unattended_access_is_limited(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """RTS (EU) 2018/389 Art. 36(5)(b) as STET v1.4.2 Part II §3 carries it: without
    ``PSU-IP-Address`` the PSU is absent and the AISP gets a few calls a day (4 in STET
    banks); the next is HTTP 429, ideally with ``Retry-After`` (RFC 6585 §4)."""
    limit = ctx.expectations.unattended_limit
    if limit is None:
        return rule.skipped("not probed (no unattended limit expected)")
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    for call in range(1, limit + 2):
        response = _send(ctx, "GET", "accounts", ctx.tokens, present=False)
        if response.status_code == 429:
            retry_after = response.headers.get("Retry-After")
            detail = f"call {call} refused with 429" + (
                "" if call == limit + 1 else " (part of today's allowance was already used)"
            )
            return rule.passed(detail, call=call, retry_after=retry_after)
        if response.status_code != 200:
            return rule.failed("unattended call refused otherwise", status=response.status_code)
    return rule.failed(f"{limit + 1} unattended calls answered", limit=limit)


@check(
    "Every answer echoes the call's X-Request-ID",
    "STET v1.4.2 Part II §3",
)
def request_id_is_echoed(ctx: DoctorContext, rule: Rule) -> CheckResult:
    """STET v1.4.2 Part II §3: ``X-Request-ID`` is mandatory on every call and the bank echoes
    it in the answer, errors included, so both sides can find one call in their logs. Judged
    over every resource-API exchange of the run."""
    calls = [e for e in ctx.transport.exchanges if e.path.startswith(ctx.api_prefix)]
    if not calls:
        return rule.skipped(NEEDS_TOKENS)
    wrong = unechoed(calls)
    if wrong:
        first = wrong[0]
        return rule.failed(
            f"{len(wrong)} of {len(calls)} answers do not echo X-Request-ID",
            example=f"{first.method} {first.path} → {first.status}",
            echoed=first.echoed_request_id,
        )
    return rule.passed("echoed on every answer", calls=len(calls))


def unechoed(exchanges: Iterable[Exchange]) -> list[Exchange]:
    """The exchanges whose answer does not carry the exact ``X-Request-ID`` sent."""
    return [
        e
        for e in exchanges
        if e.sent_request_id is not None and e.echoed_request_id != e.sent_request_id
    ]


def error_body_problem(response: httpx.Response) -> str | None:
    """Why ``response`` is not a STET error answer, None when it is one."""
    if response.status_code < 400:
        return f"expected an error status, got {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "the body is not JSON"
    violation = schemas.violation(body, schemas.ERROR)
    if violation is not None:
        return f"not the STET error structure: {violation}"
    if body["status"] != response.status_code:
        return f"status member {body['status']} is not the HTTP status"
    return None


def _account_resource(
    ctx: DoctorContext, rule: Rule, link: str, schema: dict[str, Any]
) -> CheckResult:
    if ctx.tokens is None:
        return rule.skipped(NEEDS_TOKENS)
    account = next((a for a in ctx.accounts if link in a.get("_links", {})), None)
    if account is None:
        if not ctx.accounts:
            return rule.skipped(NEEDS_ACCOUNTS)
        return rule.failed(f"no consented account has a {link} link")
    href = urlsplit(account["_links"][link]["href"])
    response = _send(ctx, "GET", href.path, ctx.tokens, query=href.query or None)
    return _judge(rule, response, schema)


def _judge(rule: Rule, response: httpx.Response, schema: dict[str, Any]) -> CheckResult:
    if response.status_code != 200:
        return rule.failed("expected 200", status=response.status_code)
    try:
        document = response.json()
    except ValueError:
        return rule.failed("the body is not JSON", status=200)
    violation = schemas.violation(document, schema)
    if violation is not None:
        return rule.failed(f"schema: {violation}", status=200)
    return rule.passed("200, schema followed", status=200)


def _send(
    ctx: DoctorContext,
    method: str,
    path: str,
    tokens: TokenSet,
    *,
    body: Any = None,
    query: str | None = None,
    present: bool = True,
) -> httpx.Response:
    psu: Mapping[str, str] = ctx.psu_present if present else {}
    return ctx.client.signed_request(
        method, path, tokens.access_token, json_body=body, psu_headers=psu, query=query
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
