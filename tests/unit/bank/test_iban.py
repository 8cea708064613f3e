"""IBAN check digits (ISO 13616 MOD 97-10) and the French RIB key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stetgate.bank.iban import (
    InvalidIban,
    french_iban,
    iban_check_digits,
    is_valid_iban,
    rib_key,
)


@pytest.mark.parametrize(
    "iban",
    [
        "FR7630006000011234567890189",  # the standard French example
        "FR1420041010050500013M02606",  # letters in the account number
        "FR7610907000301234567890125",  # BPCE sandbox example
        "GB82WEST12345698765432",
        "DE89370400440532013000",
    ],
)
def test_known_ibans_are_valid(iban: str) -> None:
    assert is_valid_iban(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "FR7630006000011234567890188",  # IBAN check digits wrong
        "FR7630006000011234567890189 ",  # trailing space
        "fr7630006000011234567890189",  # lower case
        "FR76300060000112345678901",  # too short for France
        "GB82WEST12345698765433",
        "",
        "FR",
    ],
)
def test_malformed_or_wrong_ibans_are_invalid(iban: str) -> None:
    assert not is_valid_iban(iban)


def test_a_french_iban_with_a_wrong_rib_key_is_invalid_even_if_mod_97_holds() -> None:
    bban = "30006000011234567890100"  # RIB key should be 89
    forged = "FR" + iban_check_digits("FR", bban) + bban
    assert int("".join(str(int(c, 36)) for c in forged[4:] + forged[:4])) % 97 == 1
    assert not is_valid_iban(forged)


def test_rib_key_matches_the_banque_de_france_example() -> None:
    assert rib_key("30006", "00001", "12345678901") == "89"
    assert rib_key("20041", "01005", "0500013M026") == "06"


def test_french_iban_builds_the_known_example() -> None:
    assert french_iban("30006", "00001", "12345678901") == "FR7630006000011234567890189"


@pytest.mark.parametrize(
    "args",
    [("3000", "00001", "12345678901"), ("30006", "0000A", "1"), ("30006", "00001", "123456789012")],
)
def test_rib_key_refuses_malformed_parts(args: tuple[str, str, str]) -> None:
    with pytest.raises(InvalidIban):
        rib_key(*args)


@given(
    st.from_regex(r"[0-9]{5}", fullmatch=True),
    st.from_regex(r"[0-9]{5}", fullmatch=True),
    st.from_regex(r"[0-9A-Z]{11}", fullmatch=True),
)
def test_every_built_french_iban_is_valid(bank: str, branch: str, account: str) -> None:
    iban = french_iban(bank, branch, account)
    assert len(iban) == 27 and is_valid_iban(iban)
