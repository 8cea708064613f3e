"""One doctor run's state (`DoctorContext`: the TPP's client, what the bank answered so far),
and how a check is written: a function ``judge(ctx, rule) -> CheckResult`` made a `Check` by
``@check(title, section)``, its id being the function's name (the rule's name).

Checks run in order and hand each other what they obtained (the callback, the tokens, the
account list); a check whose input is missing says which check it waited for and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from stetgate.clock import Clock
from stetgate.tpp.bank_profile import BankProfile
from stetgate.tpp.client import StetBankClient, TokenSet, TppCredentials
from stetgate.tpp.doctor.expectations import DoctorExpectations
from stetgate.tpp.doctor.journeys import PsuJourney, Walked
from stetgate.tpp.doctor.model import CheckResult, EvidenceValue, Outcome
from stetgate.tpp.doctor.recording import RecordingTransport, mtls_context


@dataclass(frozen=True)
class Rule:
    """A check's identity: its id (the function's name), a title, the section it cites."""

    check_id: str
    title: str
    section: str

    def result(self, outcome: Outcome, detail: str, **evidence: EvidenceValue) -> CheckResult:
        return CheckResult(self.check_id, self.title, self.section, outcome, detail, evidence)

    def passed(self, detail: str, **evidence: EvidenceValue) -> CheckResult:
        return self.result(Outcome.PASS, detail, **evidence)

    def failed(self, detail: str, **evidence: EvidenceValue) -> CheckResult:
        return self.result(Outcome.FAIL, detail, **evidence)

    def differs(self, detail: str, **evidence: EvidenceValue) -> CheckResult:
        return self.result(Outcome.DIFFERS, detail, **evidence)

    def info(self, detail: str, **evidence: EvidenceValue) -> CheckResult:
        return self.result(Outcome.INFO, detail, **evidence)

    def skipped(self, detail: str) -> CheckResult:
        return self.result(Outcome.SKIPPED, detail)


NEEDS_TOKENS = "needs tokens (code_exchange_over_mtls)"
"""Why a check that uses the authorization's tokens is skipped."""
UNKNOWN_VALUE = "stetgate-doctor-unknown"
"""A code or token no bank issued."""

Judge = Callable[["DoctorContext", Rule], CheckResult]


@dataclass(frozen=True)
class Check:
    """A rule and the function that judges the bank against it."""

    rule: Rule
    judge: Judge

    def __call__(self, ctx: DoctorContext) -> CheckResult:
        return self.judge(ctx, self.rule)

    @property
    def explanation(self) -> str:
        """The judge's docstring: what the rule says and why it matters."""
        return " ".join((self.judge.__doc__ or "").split())


def check(title: str, section: str) -> Callable[[Judge], Check]:
    """Make ``judge`` a `Check` whose id is ``judge``'s name."""

    def make(judge: Judge) -> Check:
        return Check(Rule(judge.__name__, title, section), judge)

    return make


@dataclass
class DoctorContext:
    bank_url: str
    credentials: TppCredentials
    client_id: str
    ca_file: Path | None
    journey: PsuJourney
    expectations: DoctorExpectations
    clock: Clock
    transport: RecordingTransport
    client: StetBankClient
    metadata: dict[str, Any] | None = None
    aisp: Walked | None = None
    refused: Walked | None = None
    cbpii: Walked | None = None
    aisp_callback_at: datetime | None = None
    tokens: TokenSet | None = None
    cbpii_tokens: TokenSet | None = None
    first_refresh_token: str | None = None
    accounts: list[dict[str, Any]] = field(default_factory=list)
    revoked: bool = False

    @classmethod
    def open(
        cls,
        bank_url: str,
        credentials: TppCredentials,
        client_id: str,
        journey: PsuJourney,
        *,
        clock: Clock,
        ca_file: Path | None = None,
        expectations: DoctorExpectations | None = None,
        profile: BankProfile | None = None,
    ) -> DoctorContext:
        """The context of a run as the TPP ``client_id`` with ``credentials`` (``profile``:
        where this bank puts the STET operations; default: stetgate's own, ``sandbox``)."""
        transport = RecordingTransport(mtls_context(credentials, ca_file))
        client = StetBankClient(
            bank_url,
            credentials,
            client_id,
            ca_file=ca_file,
            transport=transport,
            clock=clock,
            profile=profile,
        )
        return cls(
            bank_url=client.base_url,
            credentials=credentials,
            client_id=client_id,
            ca_file=ca_file,
            journey=journey,
            expectations=expectations or DoctorExpectations(),
            clock=clock,
            transport=transport,
            client=client,
        )

    def close(self) -> None:
        self.client.close()

    @property
    def issuer(self) -> str:
        """The issuer the bank announces (RFC 8414 §2), else its base URL."""
        announced = (self.metadata or {}).get("issuer")
        return str(announced) if announced else self.bank_url

    @property
    def psu_present(self) -> dict[str, str]:
        """``PSU-IP-Address``: the PSU is present (STET v1.4.2 Part II §3), no daily limit."""
        return {"PSU-IP-Address": self.expectations.psu_ip_address}

    def anonymous_http(self) -> httpx.Client:
        """A client that trusts the bank but presents no certificate (the PSU's browser, or
        a caller the token endpoint must refuse)."""
        return httpx.Client(
            base_url=self.bank_url, verify=mtls_context(None, self.ca_file), timeout=15.0
        )

    def endpoint_url(self, endpoint: str) -> str:
        """A profile endpoint (a path of the bank's base URL, or an absolute URL) as a URL."""
        return self.client.at_bank().url(endpoint)

    @property
    def api_prefix(self) -> str:
        """The resource API's path prefix, as the recorded exchanges carry it."""
        return urlsplit(self.endpoint_url(self.client.profile.endpoints.api_base)).path
