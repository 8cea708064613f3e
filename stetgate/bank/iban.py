"""IBANs (ISO 13616) and the French BBAN with its RIB key.

The demo bank must hand out account numbers a TPP's own validation accepts, so both check
digits are computed, never made up:

- ISO 13616-1 §6: the two IBAN check digits make the whole IBAN, rearranged (first four
  characters moved to the end, letters replaced by 10..35), equal 1 modulo 97 (ISO 7064
  MOD 97-10).
- French BBAN (23 characters): bank code (5 digits), branch code (5), account number (11
  alphanumeric), RIB key (2). The RIB key is ``97 - ((89 × bank + 15 × branch + 3 × account)
  mod 97)``, letters of the account number first mapped to digits (A,J→1 … I,R,Z→9; the
  Banque de France convention).
"""

from __future__ import annotations

import re

IBAN_PATTERN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
"""Shape of an electronic-format IBAN (no spaces, upper case); length is checked per country
only for France, the one country the demo bank issues in."""

_FR_BBAN = re.compile(r"([0-9]{5})([0-9]{5})([0-9A-Z]{11})([0-9]{2})")
_RIB_LETTERS = {
    letter: str(value)
    for value, letters in enumerate(
        ("", "AJ", "BKS", "CLT", "DMU", "ENV", "FOW", "GPX", "HQY", "IRZ")
    )
    for letter in letters
}


class InvalidIban(ValueError):
    """The text is not a well-formed IBAN with correct check digits."""


def _as_digits(text: str) -> str:
    """ISO 13616-1 §6.3: letters A..Z become 10..35."""
    return "".join(str(int(char, 36)) for char in text)


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits of the IBAN for ``country`` + ``bban`` (ISO 13616-1 §6.3)."""
    if not re.fullmatch(r"[A-Z]{2}", country) or not re.fullmatch(r"[A-Z0-9]{1,30}", bban):
        raise InvalidIban("country must be two capital letters and the BBAN 1-30 of [A-Z0-9]")
    remainder = int(_as_digits(bban + country + "00")) % 97
    return f"{98 - remainder:02d}"


def is_valid_iban(iban: str) -> bool:
    """True for an electronic-format IBAN whose MOD 97-10 check holds (French ones must also
    have a 23-character BBAN with a correct RIB key)."""
    if IBAN_PATTERN.fullmatch(iban) is None:
        return False
    if int(_as_digits(iban[4:] + iban[:4])) % 97 != 1:
        return False
    if iban.startswith("FR"):
        match = _FR_BBAN.fullmatch(iban[4:])
        if match is None:
            return False
        bank, branch, account, key = match.groups()
        return rib_key(bank, branch, account) == key
    return True


def rib_key(bank_code: str, branch_code: str, account_number: str) -> str:
    """The French RIB key of a bank/branch/account triplet."""
    if not (
        re.fullmatch(r"[0-9]{5}", bank_code)
        and re.fullmatch(r"[0-9]{5}", branch_code)
        and re.fullmatch(r"[0-9A-Z]{11}", account_number)
    ):
        raise InvalidIban("a French RIB is 5-digit bank code, 5-digit branch, 11-character account")
    account = int("".join(_RIB_LETTERS.get(c, c) for c in account_number))
    return f"{97 - (89 * int(bank_code) + 15 * int(branch_code) + 3 * account) % 97:02d}"


def french_iban(bank_code: str, branch_code: str, account_number: str) -> str:
    """Build a French IBAN (27 characters) with correct RIB key and IBAN check digits."""
    bban = (
        bank_code + branch_code + account_number + rib_key(bank_code, branch_code, account_number)
    )
    return "FR" + iban_check_digits("FR", bban) + bban
