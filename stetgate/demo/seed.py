"""`stetgate demo seed`: a handful of French PSUs with accounts, 400 days of history, payees.

Everything is derived from the seed number and the anchor day (the last day of history,
today in Europe/Paris by default) with a private `random.Random`, so the same seed on the same
day gives the same PSUs, credentials, IBANs, balances and transactions — and seeding again
replaces the demo data instead of adding to it. PSUs are created through the PSU directory
(`stetgate.bank.psus`: argon2id password hash, encrypted TOTP secret); their credentials are
written to ``DATA_DIR/demo-psus.json`` (mode 0600) so scripts and the sandbox can log in.

The ledger is realistic enough to exercise the API: IBANs with correct RIB keys and IBAN
check digits (`stetgate.bank.iban`), a joint account (account holder and co-holder), a
professional account, deferred-debit card accounts (``CARD`` linked to their cash account and
settled monthly on it), balances CLBD/XPCD/OTHR consistent with the entries, a few pending
card payments, and trusted beneficiaries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, insert, select

from stetgate.bank.iban import french_iban
from stetgate.demo.psu_directory import DatabasePsuDirectory
from stetgate.settings import Settings
from stetgate.store.schema import (
    bank_account_holders,
    bank_accounts,
    bank_balances,
    bank_beneficiaries,
    bank_transactions,
    psus,
)

DEFAULT_SEED = 1
HISTORY_DAYS = 400
BANK_CODE = "99999"
"""Not a Banque de France bank code in use: demo IBANs can never designate a real account."""
BIC = "STGTFRPPXXX"
CARD_ISSUER = "STGT"
PARIS = ZoneInfo("Europe/Paris")
CREDENTIALS_FILE = "demo-psus.json"

DirectoryFactory = Callable[[Engine, Settings], DatabasePsuDirectory]
Profile = Literal["household", "single", "professional", "student"]


@dataclass(frozen=True)
class _Persona:
    psu_id: str
    display_name: str


@dataclass(frozen=True)
class _AccountPlan:
    key: str
    holders: tuple[tuple[str, str], ...]  # (psu_id, psuStatus)
    name: str
    product: str
    usage: Literal["PRIV", "ORGA"]
    profile: Profile
    instant_range: tuple[int, int]  # euros: the expected balance (XPCD) on the anchor day
    overdraft: int  # euros
    card: str | None = None  # product name of its deferred-debit card


_PERSONAS = (
    _Persona("jdupont", "M. Jean Dupont"),
    _Persona("mdupont", "Mme Marie Dupont"),
    _Persona("cmartin", "Mme Claire Martin"),
    _Persona("lbernard", "M. Luc Bernard"),
    _Persona("sroux", "Mme Sophie Roux"),
)

_PLANS = (
    _AccountPlan(
        "dupont-joint",
        (("jdupont", "Account Holder"), ("mdupont", "Co-account Holder")),
        "Compte de M. et Mme Dupont",
        "Compte de dépôt",
        "PRIV",
        "household",
        (1800, 5200),
        800,
        card="Visa Premier débit différé",
    ),
    _AccountPlan(
        "jdupont-perso",
        (("jdupont", "Account Holder"),),
        "Compte de M. Jean Dupont",
        "Compte de dépôt",
        "PRIV",
        "single",
        (300, 1500),
        300,
    ),
    _AccountPlan(
        "mdupont-perso",
        (("mdupont", "Account Holder"),),
        "Compte de Mme Marie Dupont",
        "Compte de dépôt",
        "PRIV",
        "single",
        (600, 2400),
        300,
        card="Visa Classic débit différé",
    ),
    _AccountPlan(
        "cmartin-courant",
        (("cmartin", "Account Holder"),),
        "Compte de Mme Claire Martin",
        "Compte de dépôt",
        "PRIV",
        "single",
        (900, 3500),
        500,
        card="Mastercard Gold débit différé",
    ),
    _AccountPlan(
        "lbernard-perso",
        (("lbernard", "Account Holder"),),
        "Compte de M. Luc Bernard",
        "Compte de dépôt",
        "PRIV",
        "single",
        (400, 2000),
        400,
    ),
    _AccountPlan(
        "lbernard-pro",
        (("lbernard", "Account Holder"),),
        "Bernard Menuiserie",
        "Compte courant professionnel",
        "ORGA",
        "professional",
        (6000, 24000),
        3000,
        card="Visa Business débit différé",
    ),
    _AccountPlan(
        "sroux-courant",
        (("sroux", "Account Holder"),),
        "Compte de Mme Sophie Roux",
        "Compte de dépôt jeune",
        "PRIV",
        "student",
        (-180, -60),
        200,
    ),
)

_BENEFICIARY_BANKS = (
    ("30004", "BNPAFRPPXXX"),
    ("30003", "SOGEFRPPXXX"),
    ("10278", "CMCIFR2AXXX"),
    ("20041", "PSSTFRPPPAR"),
    ("13335", "CEPAFRPP333"),
    ("18206", "AGRIFRPP882"),
)
_BENEFICIARIES = {
    "jdupont": (
        ("SCI Les Tilleuls", "12 rue des Tilleuls", "75011 Paris"),
        ("Lucas Dupont", "4 place Bellecour", "69002 Lyon"),
        ("Cabinet Infirmier Voltaire", "88 boulevard Voltaire", "75011 Paris"),
    ),
    "mdupont": (
        ("Lucas Dupont", "4 place Bellecour", "69002 Lyon"),
        ("Ecole de Musique du 11e", "3 rue Oberkampf", "75011 Paris"),
    ),
    "cmartin": (
        ("Agence Immobiliere Duval", "20 cours Mirabeau", "13100 Aix-en-Provence"),
        ("Paul Martin", "7 rue Nationale", "37000 Tours"),
    ),
    "lbernard": (
        ("Bois et Materiaux du Centre", "ZA des Gravieres", "18000 Bourges"),
        ("Expert Comptable Lefevre", "15 rue Moyenne", "18000 Bourges"),
        ("URSSAF Centre-Val de Loire", "Place du General de Gaulle", "45000 Orleans"),
    ),
    "sroux": (("Colocation Rue Sainte", "31 rue Sainte", "13001 Marseille"),),
}

_GROCERIES = (
    "CARREFOUR MARKET",
    "MONOPRIX",
    "FRANPRIX",
    "LIDL",
    "AUCHAN",
    "PICARD",
    "INTERMARCHE",
    "BIOCOOP",
)
_SMALL_SHOPS = (
    "BOULANGERIE PAUL",
    "PHARMACIE DU MARCHE",
    "TABAC LE BALTO",
    "FNAC",
    "DECATHLON",
    "LEROY MERLIN",
    "SEPHORA",
    "BOUYGUES TELECOM BOUTIQUE",
)
_ONLINE = (
    "AMAZON PAYMENTS",
    "SNCF CONNECT",
    "UBER EATS",
    "NETFLIX.COM",
    "SPOTIFY",
    "BLABLACAR",
    "DOCTOLIB",
    "CDISCOUNT",
)
_RESTAURANTS = (
    "LE PETIT CLER",
    "BRASSERIE LIPP",
    "PIZZERIA NAPOLI",
    "SUSHI SHOP",
    "CAFE DE FLORE",
    "BISTROT DU COIN",
)
_TOWNS = ("PARIS 11", "PARIS 15", "LYON 2", "BOURGES", "MARSEILLE 1", "TOURS")
_TRADE_SUPPLIERS = ("LEROY MERLIN PRO", "POINT P", "TOTAL ENERGIES", "BRICO DEPOT", "WURTH FRANCE")
_CLIENTS = (
    "DURAND RENOVATION",
    "SCI DU CANAL",
    "MAIRIE DE VIERZON",
    "M PETIT JACQUES",
    "CUISINES BERTIN",
    "SARL HABITAT BERRY",
)


@dataclass(frozen=True)
class DemoEntry:
    """One ledger line before numbering (amount signed in cents)."""

    imputation_date: date
    amount_minor: int
    label: str
    transaction_date: date
    value_date: date
    pending: bool = False


@dataclass
class DemoAccount:
    resource_id: str
    plan_key: str
    iban: str | None
    other_identification: str | None
    name: str
    product: str
    usage: str
    cash_account_type: str
    details: str | None
    linked_account: str | None
    overdraft_minor: int
    holders: tuple[tuple[str, str], ...]
    entries: list[DemoEntry] = field(default_factory=list)
    closing_minor: int = 0


@dataclass(frozen=True)
class DemoPsu:
    psu_id: str
    display_name: str
    password: str
    totp_secret: str


@dataclass(frozen=True)
class DemoBeneficiary:
    id: str
    psu_id: str
    position: int
    name: str
    iban: str
    bic: str
    address_lines: tuple[str, ...]


@dataclass(frozen=True)
class DemoLedger:
    seed: int
    anchor: date
    psus: tuple[DemoPsu, ...]
    accounts: tuple[DemoAccount, ...]
    beneficiaries: tuple[DemoBeneficiary, ...]

    def ibans_of(self, psu_id: str) -> list[str]:
        return [a.iban for a in self.accounts if a.iban and any(h == psu_id for h, _ in a.holders)]


@dataclass(frozen=True)
class SeedSummary:
    psus: int
    accounts: int
    transactions: int
    beneficiaries: int
    credentials_file: Path


# --------------------------------------------------------------------------- generation


def build_demo_ledger(seed: int, anchor: date) -> DemoLedger:
    """The whole demo data set for ``seed``, history ending on ``anchor`` (pure function)."""
    people = tuple(_demo_psu(seed, persona) for persona in _PERSONAS)
    accounts: list[DemoAccount] = []
    for plan in _PLANS:
        rng = random.Random(f"stetgate-demo:{seed}:{plan.key}")  # noqa: S311
        cash = _cash_account(seed, plan, rng)
        card = _card_account(seed, plan, cash, rng) if plan.card else None
        _fill_history(cash, card, plan, rng, anchor)
        accounts.append(cash)
        if card is not None:
            accounts.append(card)
    beneficiaries = tuple(_beneficiaries(seed))
    return DemoLedger(seed, anchor, people, tuple(accounts), beneficiaries)


def _digest(seed: int, label: str) -> str:
    return hashlib.sha256(f"stetgate-demo:{seed}:{label}".encode()).hexdigest()


def _demo_psu(seed: int, persona: _Persona) -> DemoPsu:
    # Not for secrets: demo credentials are reproducible from the seed on purpose.
    rng = random.Random(f"stetgate-demo:{seed}:psu:{persona.psu_id}")  # noqa: S311
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    password = "".join(rng.choice(alphabet) for _ in range(14))
    secret = base64.b32encode(rng.getrandbits(160).to_bytes(20, "big")).decode().rstrip("=")
    return DemoPsu(persona.psu_id, persona.display_name, password, secret)


def _cash_account(seed: int, plan: _AccountPlan, rng: random.Random) -> DemoAccount:
    branch = f"{rng.randrange(10000, 99999):05d}"
    number = f"{rng.randrange(10**10, 10**11):011d}"
    return DemoAccount(
        resource_id="A" + _digest(seed, plan.key)[:15].upper(),
        plan_key=plan.key,
        iban=french_iban(BANK_CODE, branch, number),
        other_identification=None,
        name=plan.name,
        product=plan.product,
        usage=plan.usage,
        cash_account_type="CACC",
        details=None,
        linked_account=None,
        overdraft_minor=plan.overdraft * 100,
        holders=plan.holders,
    )


def _card_account(
    seed: int, plan: _AccountPlan, cash: DemoAccount, rng: random.Random
) -> DemoAccount:
    last4 = f"{rng.randrange(10000):04d}"
    bin6 = rng.choice(("497010", "497401", "513283", "456735"))
    return DemoAccount(
        resource_id="C" + _digest(seed, plan.key + ":card")[:15].upper(),
        plan_key=plan.key + ":card",
        iban=None,
        other_identification=f"{bin6}XXXXXX{last4}",
        name=f"Carte {plan.card.split(' débit')[0] if plan.card else ''} {last4}".strip(),
        product=plan.card or "",
        usage=plan.usage,
        cash_account_type="CARD",
        details=f"{plan.card} - débit le dernier jour ouvré du mois sur {cash.iban}",
        linked_account=cash.resource_id,
        overdraft_minor=0,
        holders=plan.holders,
    )


def _days(anchor: date) -> Iterator[date]:
    start = anchor - timedelta(days=HISTORY_DAYS - 1)
    for offset in range(HISTORY_DAYS):
        yield start + timedelta(days=offset)


def _cents(rng: random.Random, low: float, high: float) -> int:
    return int(round(rng.uniform(low, high), 2) * 100)


def _last_business_day(day: date) -> date:
    following = day.replace(day=28) + timedelta(days=4)
    last = following - timedelta(days=following.day)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return last


def _fill_history(
    cash: DemoAccount,
    card: DemoAccount | None,
    plan: _AccountPlan,
    rng: random.Random,
    anchor: date,
) -> None:
    """Daily life of one account (and its card) over the history window.

    Card payments of the last two days are still pending (no booking date yet); a card's
    booked payments are settled on its cash account on the last business day of the month
    (French "débit différé"), which credits the card account back to zero outstanding.
    """
    salary = _cents(rng, 1900, 3600)
    rent = _cents(rng, 620, 1350)
    pending_from = anchor - timedelta(days=1)
    unsettled = 0

    def book(day: date, amount: int, label: str) -> None:
        cash.entries.append(DemoEntry(day, amount, label, day, day))

    def card_payment(day: date, low: float, high: float, merchant: str) -> None:
        nonlocal unsettled
        amount = _cents(rng, low, high)
        sale = day - timedelta(days=rng.choice((0, 0, 1, 2)))
        pending = day >= pending_from
        if card is None:
            label = f"CARTE X{(cash.iban or '')[-4:]} {sale:%d/%m} {merchant}"
        else:
            label = f"CB {merchant} {sale:%d/%m}"
            unsettled += 0 if pending else amount
        target = cash if card is None else card
        target.entries.append(
            DemoEntry(sale if pending else day, -amount, label, sale, day, pending)
        )

    for day in _days(anchor):
        weekday = day.weekday()
        month = f"{day:%m/%Y}"
        if plan.profile == "professional":
            if rng.random() < 0.12 and weekday < 5:
                book(
                    day,
                    _cents(rng, 350, 6800),
                    f"VIR SEPA {rng.choice(_CLIENTS)} FACTURE F{day:%Y}-{rng.randrange(100, 999)}",
                )
            if day.day == 5:
                book(
                    day,
                    -_cents(rng, 900, 2400),
                    f"PRLV SEPA BOIS ET MATERIAUX DU CENTRE RELEVE {month}",
                )
            if day.day == 15:
                book(day, -_cents(rng, 600, 1900), f"PRLV SEPA URSSAF {month}")
            if day.day == 20 and day.month in (1, 4, 7, 10):
                book(day, -_cents(rng, 1200, 3800), "PRLV SEPA DGFIP TVA TRIMESTRE")
            if day.day == 28:
                book(day, -_cents(rng, 1800, 2600), f"VIR SEPA REMUNERATION GERANT {month}")
                book(day, -1890, f"FRAIS TENUE DE COMPTE PRO {month}")
            if weekday < 5 and rng.random() < 0.25:
                card_payment(day, 12, 260, rng.choice(_TRADE_SUPPLIERS))
        else:
            _private_day(plan, rng, day, salary, rent, book, card_payment)
        if card is not None and day == _last_business_day(day) and unsettled:
            statement = f"FACTURE CARTE {card.other_identification} DU {day:%d/%m/%Y}"
            book(day, -unsettled, statement)
            card.entries.append(DemoEntry(day, unsettled, f"REGLEMENT {statement}", day, day))
            unsettled = 0

    # The plan fixes the expected balance (pending card payments included), so an account keeps
    # its profile whatever the anchor day: the student is overdrawn within the overdraft even
    # when the last two days' pending payments are large.
    instant = rng.randrange(plan.instant_range[0] * 100, plan.instant_range[1] * 100)
    closing = instant - sum(e.amount_minor for e in cash.entries if e.pending)
    opening_day = anchor - timedelta(days=HISTORY_DAYS)
    opening = closing - sum(e.amount_minor for e in cash.entries if not e.pending)
    cash.entries.insert(
        0,
        DemoEntry(opening_day, opening, "REPRISE DE SOLDE A L'OUVERTURE", opening_day, opening_day),
    )
    cash.closing_minor = closing
    if card is not None:
        card.closing_minor = sum(e.amount_minor for e in card.entries if not e.pending)


def _private_day(
    plan: _AccountPlan,
    rng: random.Random,
    day: date,
    salary: int,
    rent: int,
    book: Callable[[date, int, str], None],
    card_payment: Callable[[date, float, float, str], None],
) -> None:
    month = f"{day:%m/%Y}"
    if plan.profile == "student":
        if day.day == 5:
            book(day, _cents(rng, 480, 650), f"VIR SEPA CAF DES BOUCHES DU RHONE APL {month}")
        if day.day == 4:
            book(day, -_cents(rng, 380, 420), f"VIR SEPA LOYER COLOCATION {month}")
    else:
        if day.day == 28:
            employer = (
                "ACME INDUSTRIES SAS" if plan.profile == "household" else ("GROUPE HOSPITALIER EST")
            )
            book(day, salary, f"VIR SEPA {employer} SALAIRE {month}")
        if day.day == 3:
            book(
                day,
                -rent,
                f"PRLV SEPA FONCIA LOYER {month}"
                if plan.profile == "single"
                else f"ECHEANCE PRET IMMOBILIER {month}",
            )
        if day.day == 2:
            book(day, -8640, "PRLV SEPA COMUTITRES NAVIGO")
    if day.day == 10:
        book(day, -_cents(rng, 45, 140), "PRLV SEPA EDF CLIENTS PARTICULIERS")
    if day.day == 15:
        book(day, -3999, "PRLV SEPA ORANGE SA FACTURE INTERNET")
    if day.day == 20:
        book(day, -1999, "PRLV SEPA FREE MOBILE")
    if day.day == 12 and plan.profile == "household":
        book(day, -_cents(rng, 150, 400), "VIR SEPA EMIS VERS LIVRET A")
    if day.day == 1 and day.month in (1, 4, 7, 10):
        book(day, -_cents(rng, 180, 320), "PRLV SEPA MAIF ASSURANCE HABITATION")
    if day.day == 6 and day.month == 3:
        book(day, -13400, "COTISATION CARTE ANNUELLE")
    if day.weekday() in (1, 4, 5) or rng.random() < 0.15:
        card_payment(day, 14, 135, rng.choice(_GROCERIES))
    if rng.random() < 0.35:
        card_payment(day, 2.5, 45, rng.choice(_SMALL_SHOPS))
    if rng.random() < 0.12:
        card_payment(day, 9, 180, rng.choice(_ONLINE))
    if day.weekday() >= 4 and rng.random() < 0.3:
        card_payment(day, 18, 95, rng.choice(_RESTAURANTS))
    if rng.random() < 0.06:
        book(
            day,
            -rng.choice((20, 40, 50, 60, 80, 100)) * 100,
            f"RETRAIT DAB {day:%d/%m} {rng.choice(_TOWNS)}",
        )
    if rng.random() < 0.02:
        book(
            day,
            _cents(rng, 15, 250),
            rng.choice(
                (
                    "VIR SEPA REMBOURSEMENT CPAM",
                    "VIR SEPA REMBT MUTUELLE MGEN",
                    "VIR INSTANTANE RECU DE L DUPONT",
                )
            ),
        )


def _beneficiaries(seed: int) -> Iterator[DemoBeneficiary]:
    for persona in _PERSONAS:
        rng = random.Random(f"stetgate-demo:{seed}:beneficiaries:{persona.psu_id}")  # noqa: S311
        for position, (name, street, town) in enumerate(_BENEFICIARIES.get(persona.psu_id, ())):
            bank_code, bic = rng.choice(_BENEFICIARY_BANKS)
            iban = french_iban(
                bank_code,
                f"{rng.randrange(10000, 99999):05d}",
                f"{rng.randrange(10**10, 10**11):011d}",
            )
            yield DemoBeneficiary(
                id="B" + _digest(seed, f"{persona.psu_id}:{position}")[:15].upper(),
                psu_id=persona.psu_id,
                position=position,
                name=name,
                iban=iban,
                bic=bic,
                address_lines=(street, town),
            )


# --------------------------------------------------------------------------- storage


def numbered_entries(account: DemoAccount) -> list[tuple[int, DemoEntry]]:
    """Entries numbered 1.. in imputation order, pending ones last (STET ``entryReference`` is
    the bank's incremental technical id: greater is newer)."""
    ordered = sorted(account.entries, key=lambda e: (e.pending, e.imputation_date))
    return list(enumerate(ordered, start=1))


def _entry_rows(
    account: DemoAccount, numbered: Sequence[tuple[int, DemoEntry]]
) -> list[dict[str, object]]:
    return [
        dict(
            account_id=account.resource_id,
            entry_reference=number,
            resource_id=f"{account.resource_id}-{number:06d}",
            amount_minor=abs(entry.amount_minor),
            credit_debit="CRDT" if entry.amount_minor >= 0 else "DBIT",
            status="PDNG" if entry.pending else "BOOK",
            imputation_date=entry.imputation_date,
            booking_date=None if entry.pending else entry.imputation_date,
            value_date=None if entry.pending else entry.value_date,
            transaction_date=entry.transaction_date,
            remittance=[entry.label],
        )
        for number, entry in numbered
    ]


def _balance_rows(
    account: DemoAccount, numbered: Sequence[tuple[int, DemoEntry]], anchor: date
) -> list[dict[str, object]]:
    """CLBD = booked entries; XPCD adds pending ones; OTHR: what the PSU may still spend
    (overdraft included) for a cash account, the outstanding deferred debit for a card."""
    booked = [(number, entry) for number, entry in numbered if not entry.pending]
    pending = sum(entry.amount_minor for _, entry in numbered if entry.pending)
    last_entry, last_change = None, None
    if booked:
        last_entry, last = booked[-1]
        last_change = datetime.combine(last.imputation_date, time(6, 0), PARIS).astimezone(UTC)
    common = dict(
        account_id=account.resource_id,
        reference_date=anchor,
        last_change_at=last_change,
        last_committed_entry=last_entry,
    )
    closing, expected = account.closing_minor, account.closing_minor + pending
    balances: list[tuple[str, int, str]]
    if account.cash_account_type == "CARD":
        balances = [
            ("CLBD", closing, f"Encours comptabilisé au {anchor:%d/%m/%Y}"),
            ("OTHR", expected, "Encours débit différé (avec opérations en attente)"),
        ]
    else:
        balances = [
            ("CLBD", closing, f"Solde comptable au {anchor:%d/%m/%Y}"),
            ("XPCD", expected, "Solde instantané"),
            (
                "OTHR",
                expected + account.overdraft_minor,
                "Solde disponible (découvert autorisé compris)",
            ),
        ]
    return [
        dict(common, balance_type=kind, position=position, amount_minor=amount, name=name)
        for position, (kind, amount, name) in enumerate(balances)
    ]


def store_demo_ledger(conn: Connection, ledger: DemoLedger) -> int:
    """Replace the demo PSUs' accounts, entries and beneficiaries by ``ledger``'s, in the
    caller's transaction; returns the number of transactions written."""
    psu_ids = [p.psu_id for p in ledger.psus]
    previous = (
        select(bank_account_holders.c.account_id)
        .where(bank_account_holders.c.psu_id.in_(psu_ids))
        .scalar_subquery()
    )
    stale = list(
        conn.execute(
            select(bank_accounts.c.resource_id).where(bank_accounts.c.resource_id.in_(previous))
        ).scalars()
    )
    new_ids = [a.resource_id for a in ledger.accounts]
    new_ibans = [a.iban for a in ledger.accounts if a.iban]
    stale += list(
        conn.execute(
            select(bank_accounts.c.resource_id).where(
                bank_accounts.c.resource_id.in_(new_ids) | bank_accounts.c.iban.in_(new_ibans)
            )
        ).scalars()
    )
    for table in (bank_transactions, bank_balances, bank_account_holders):
        conn.execute(delete(table).where(table.c.account_id.in_(stale)))
    conn.execute(delete(bank_accounts).where(bank_accounts.c.resource_id.in_(stale)))
    conn.execute(delete(bank_beneficiaries).where(bank_beneficiaries.c.psu_id.in_(psu_ids)))

    written = 0
    for account in ledger.accounts:
        conn.execute(
            insert(bank_accounts).values(
                resource_id=account.resource_id,
                bic=BIC,
                iban=account.iban,
                other_identification=account.other_identification,
                other_scheme="CPAN" if account.other_identification else None,
                other_issuer=CARD_ISSUER if account.other_identification else None,
                currency="EUR",
                name=account.name,
                details=account.details,
                linked_account=account.linked_account,
                usage=account.usage,
                cash_account_type=account.cash_account_type,
                product=account.product,
                overdraft_minor=account.overdraft_minor,
            )
        )
        conn.execute(
            insert(bank_account_holders),
            [
                dict(
                    psu_id=psu_id,
                    account_id=account.resource_id,
                    psu_status=status,
                    position=_position(ledger, account, psu_id),
                )
                for psu_id, status in account.holders
            ],
        )
        numbered = numbered_entries(account)
        if numbered:
            conn.execute(insert(bank_transactions), _entry_rows(account, numbered))
        written += len(numbered)
        conn.execute(insert(bank_balances), _balance_rows(account, numbered, ledger.anchor))
    if ledger.beneficiaries:
        conn.execute(
            insert(bank_beneficiaries),
            [
                dict(
                    id=b.id,
                    psu_id=b.psu_id,
                    position=b.position,
                    creditor_name=b.name,
                    creditor_iban=b.iban,
                    creditor_bic=b.bic,
                    country="FR",
                    address_lines=list(b.address_lines),
                )
                for b in ledger.beneficiaries
            ],
        )
    return written


def _position(ledger: DemoLedger, account: DemoAccount, psu_id: str) -> int:
    mine = [a.resource_id for a in ledger.accounts if any(h == psu_id for h, _ in a.holders)]
    return mine.index(account.resource_id)


def ensure_demo_psus(
    directory: DatabasePsuDirectory, engine: Engine, people: Sequence[DemoPsu], now: datetime
) -> None:
    """Create the demo PSUs, or bring existing ones to the seed's credentials."""
    for person in people:
        if directory.find(person.psu_id) is not None:
            if directory.check_password(person.psu_id, person.password):
                directory.enrol_totp(person.psu_id, person.totp_secret)
                directory.unblock(person.psu_id)
                continue
            with engine.begin() as conn:
                conn.execute(delete(psus).where(psus.c.psu_id == person.psu_id))
        directory.add_psu(
            person.psu_id,
            person.password,
            display_name=person.display_name,
            totp_secret=person.totp_secret,
            now=now,
        )


def write_credentials(path: Path, ledger: DemoLedger) -> None:
    """``[{"id", "password", "totp_secret", "accounts": [iban, …]}]``, mode 0600, atomically."""
    data = [
        {
            "id": p.psu_id,
            "password": p.password,
            "totp_secret": p.totp_secret,
            "accounts": ledger.ibans_of(p.psu_id),
        }
        for p in ledger.psus
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    finally:
        os.close(fd)
    tmp.replace(path)


def seed_demo_bank(
    settings: Settings,
    seed: int = DEFAULT_SEED,
    *,
    now: datetime,
    anchor: date | None = None,
    directory_factory: DirectoryFactory | None = None,
) -> SeedSummary:
    """Seed (or re-seed) the demo bank of ``settings``' database and write the credentials.

    ``now`` comes from the caller's clock (the system clock for the CLI and the sandbox, the
    test's clock in tests): it dates the PSUs' creation, and the history ends on ``anchor``,
    by default ``now``'s day in Europe/Paris."""
    from stetgate.keys import InstanceKeys, load_master_key
    from stetgate.store.db import make_engine, require_migrated

    day = anchor or now.astimezone(PARIS).date()
    ledger = build_demo_ledger(seed, day)
    engine = make_engine(settings.resolved_database_url, 1)
    try:
        require_migrated(engine)
        if directory_factory is not None:
            directory = directory_factory(engine, settings)
        else:
            keys = InstanceKeys.from_master(load_master_key(settings.secret_key, settings.data_dir))
            directory = DatabasePsuDirectory(
                engine,
                keys.totp_fernet,
                max_failed_attempts=settings.max_failed_auth_attempts,
                block_seconds=settings.psu_block_seconds,
            )
        ensure_demo_psus(directory, engine, ledger.psus, now)
        with engine.begin() as conn:
            transactions = store_demo_ledger(conn, ledger)
    finally:
        engine.dispose()
    credentials = settings.data_dir / CREDENTIALS_FILE
    write_credentials(credentials, ledger)
    return SeedSummary(
        len(ledger.psus), len(ledger.accounts), transactions, len(ledger.beneficiaries), credentials
    )
