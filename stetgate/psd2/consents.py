"""The PSU's consent as the AISP forwards it: STET v1.4.2 ``PUT /consents`` ("mixed detailed
consent", STET v1.4.2 Part II; BPCE "AISP-mix"; docs/decisions.md#consent).

The AISP gathers the PSU's choices and forwards them; each PUT **replaces** the previous
consent of that PSU for that TPP organization. The body
(``Access``) lists, per data type, the accounts it covers — ``balances`` and ``transactions``
as AccountIdentification lists (``{"iban"}`` or ``{"other": {identification, schemeName,
issuer}}``) — and two flags, ``trustedBeneficiaries`` and ``psuIdentity``. Accounts are
resolved to the bank's resource ids when the consent is stored; naming an account the PSU does
not hold is a 400 and stores nothing.

Until a consent lists at least one account, ``GET /accounts`` shows the accounts without
balances or links and no account data can be read (BPCE, STET 1.4 Part II §4.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from stetgate.bank.backend import Account
from stetgate.bank.iban import IBAN_PATTERN
from stetgate.psd2.errors import BadRequest
from stetgate.psd2.sql import upsert
from stetgate.store.schema import psd2_consents

MAX_ACCOUNTS_PER_LIST = 100
_CURRENCY_LENGTH = 3


@dataclass(frozen=True, slots=True)
class Consent:
    """What the PSU let this TPP organization see (account resource ids per data type)."""

    balances: frozenset[str] = frozenset()
    transactions: frozenset[str] = frozenset()
    trusted_beneficiaries: bool = False
    psu_identity: bool = False

    @property
    def accounts(self) -> frozenset[str]:
        """Accounts the consent covers in any way: the ones ``GET /accounts`` lists."""
        return self.balances | self.transactions

    @classmethod
    def from_row(
        cls,
        balances: Sequence[str] | None,
        transactions: Sequence[str] | None,
        trusted_beneficiaries: bool | None,
        psu_identity: bool | None,
    ) -> Consent:
        return cls(
            frozenset(balances or ()),
            frozenset(transactions or ()),
            bool(trusted_beneficiaries),
            bool(psu_identity),
        )


@dataclass(frozen=True, slots=True)
class AccountReference:
    """STET AccountIdentification as sent by the TPP."""

    iban: str | None = None
    other_identification: str | None = None
    other_scheme: str | None = None
    other_issuer: str | None = None
    """Kept to repeat the reference as sent (the CBPII answer embeds its request); matching
    uses identification and scheme."""
    currency: str | None = None

    def designates(self, account: Account) -> bool:
        if self.currency is not None and self.currency != account.currency:
            return False
        if self.iban is not None:
            return account.iban == self.iban
        other = account.other
        return (
            other is not None
            and other.identification == self.other_identification
            and (self.other_scheme is None or other.scheme_name == self.other_scheme)
        )

    def describe(self) -> str:
        return f"iban {self.iban}" if self.iban else f"other {self.other_identification}"


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    balances: tuple[AccountReference, ...]
    transactions: tuple[AccountReference, ...]
    trusted_beneficiaries: bool
    psu_identity: bool


def parse_account_reference(value: Any, where: str) -> AccountReference:
    """Validate one AccountIdentification: exactly one of ``iban`` / ``other``."""
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an AccountIdentification object")
    currency = value.get("currency")
    if currency is not None and (
        not isinstance(currency, str)
        or len(currency) != _CURRENCY_LENGTH
        or not currency.isascii()
        or not currency.isupper()
    ):
        raise BadRequest(f"{where}.currency must be an ISO 4217 code")
    iban, other = value.get("iban"), value.get("other")
    if (iban is None) == (other is None):
        raise BadRequest(f"{where} must carry exactly one of iban, other")
    if iban is not None:
        if not isinstance(iban, str) or IBAN_PATTERN.fullmatch(iban) is None:
            raise BadRequest(f"{where}.iban is not an IBAN")
        return AccountReference(iban=iban, currency=currency)
    if not isinstance(other, dict):
        raise BadRequest(f"{where}.other must be a GenericIdentification object")
    identification, scheme = other.get("identification"), other.get("schemeName")
    if not isinstance(identification, str) or not 1 <= len(identification) <= 70:
        raise BadRequest(f"{where}.other.identification must be a string of 1-70 characters")
    if not isinstance(scheme, str) or not 1 <= len(scheme) <= 35:
        raise BadRequest(f"{where}.other.schemeName must be a string of 1-35 characters")
    issuer = other.get("issuer")
    if issuer is not None and (not isinstance(issuer, str) or len(issuer) > 35):
        raise BadRequest(f"{where}.other.issuer must be a string of at most 35 characters")
    return AccountReference(
        other_identification=identification,
        other_scheme=scheme,
        other_issuer=issuer,
        currency=currency,
    )


def parse_consent_request(body: Any) -> ConsentRequest:
    """Validate a ``PUT /consents`` body (STET ``Access``); absent members mean "nothing"."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object (STET Access)")
    lists: dict[str, tuple[AccountReference, ...]] = {}
    for name in ("balances", "transactions"):
        items = body.get(name, [])
        if items is None:
            items = []
        if not isinstance(items, list):
            raise BadRequest(f"{name} must be an array of AccountIdentification")
        if len(items) > MAX_ACCOUNTS_PER_LIST:
            raise BadRequest(f"{name} lists more than {MAX_ACCOUNTS_PER_LIST} accounts")
        lists[name] = tuple(
            parse_account_reference(item, f"{name}[{i}]") for i, item in enumerate(items)
        )
    flags: dict[str, bool] = {}
    for name in ("trustedBeneficiaries", "psuIdentity"):
        value = body.get(name, False)
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be a boolean")
        flags[name] = value
    return ConsentRequest(
        lists["balances"],
        lists["transactions"],
        flags["trustedBeneficiaries"],
        flags["psuIdentity"],
    )


def resolve_consent(request: ConsentRequest, accounts: Sequence[Account]) -> Consent:
    """Map the requested AccountIdentifications onto the PSU's accounts (400 if one is not)."""

    def resolve(references: tuple[AccountReference, ...], name: str) -> frozenset[str]:
        found: set[str] = set()
        for reference in references:
            match = next((a for a in accounts if reference.designates(a)), None)
            if match is None:
                raise BadRequest(f"{name}: {reference.describe()} is not an account of the PSU")
            found.add(match.resource_id)
        return frozenset(found)

    return Consent(
        resolve(request.balances, "balances"),
        resolve(request.transactions, "transactions"),
        request.trusted_beneficiaries,
        request.psu_identity,
    )


def replace_consent(
    conn: Connection, psu_id: str, org_id: str, consent: Consent, now: datetime
) -> None:
    """Store ``consent`` in place of any previous one of (PSU, organization): one upsert."""
    values: Mapping[str, Any] = {
        "balances": sorted(consent.balances),
        "transactions": sorted(consent.transactions),
        "trusted_beneficiaries": consent.trusted_beneficiaries,
        "psu_identity": consent.psu_identity,
        "updated_at": now,
    }
    conn.execute(
        upsert(
            conn,
            psd2_consents,
            {"psu_id": psu_id, "org_id": org_id, "created_at": now, **values},
            keys=("psu_id", "org_id"),
            update=values,
        )
    )
