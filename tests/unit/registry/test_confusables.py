"""UTS #39 skeletons and mixed-script words (stetgate.registry.confusables), on the vendored
Unicode data file."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import pytest

from stetgate.registry.confusables import (
    confusable_names,
    mixed_script_word,
    name_skeletons,
    prototypes,
    skeleton,
)

CYRILLIC_A = "\u0430"
GREEK_OMICRON = "\u03bf"


def test_the_vendored_data_file_is_the_official_unicode_13_confusables_txt() -> None:
    folder = files("stetgate.registry").joinpath("unicode")
    data = folder.joinpath("confusables.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == (
        "96f2500ec78fd96f11561d4b40237435dfece70303b1db3c0974138a333aa206"
    )
    assert b"# Version: 13.0.0" in data
    assert "SPDX-License-Identifier: Unicode-3.0" in folder.joinpath("LICENSE").read_text()
    assert len(prototypes()) == 6311


@pytest.mark.parametrize(
    ("source", "prototype"),
    [
        (CYRILLIC_A, "a"),
        (GREEK_OMICRON, "o"),
        ("0", "O"),
        ("1", "l"),
        ("I", "l"),
        ("m", "rn"),
        ("\uff41", "a"),  # FULLWIDTH LATIN SMALL LETTER A
        ("\U0001d41a", "a"),  # MATHEMATICAL BOLD SMALL A
    ],
)
def test_the_prototype_mapping_follows_confusables_txt(source: str, prototype: str) -> None:
    assert prototypes()[source] == prototype


def test_the_skeleton_is_nfd_then_prototypes_then_nfd() -> None:
    # é as one code point and as e + combining acute have one skeleton
    assert skeleton("Soci\u00e9t\u00e9") == skeleton("Socie\u0301te\u0301")
    assert skeleton(f"B{CYRILLIC_A}nk") == skeleton("Bank") == "Bank"
    # the result is idempotent, as UTS #39 §4 requires of the data
    assert skeleton(skeleton("Paypal m\u00e9dia 10")) == skeleton("Paypal m\u00e9dia 10")


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        pytest.param("Bank App", f"B{CYRILLIC_A}nk App", id="cyrillic-a"),
        pytest.param("Orange Money", "0range Money", id="digit-zero-for-O"),
        pytest.param("Budget Insight", "Budget lnsight", id="small-L-for-capital-I"),
        pytest.param("Modern Pay", "Rnodern Pay", id="rn-for-m"),
        pytest.param("Bank App", f"BANK {CYRILLIC_A.upper()}PP", id="case-and-cyrillic"),
        pytest.param("ABC Pay", "\uff21\uff22\uff23 Pay", id="fullwidth"),
        pytest.param("Bank App", "Bank  App", id="spacing"),
        pytest.param("Yoyo", f"Y{GREEK_OMICRON}y{GREEK_OMICRON}", id="greek-omicron"),
    ],
)
def test_look_alike_names_are_confusable(ours: str, theirs: str) -> None:
    assert confusable_names(ours, theirs)
    assert confusable_names(theirs, ours)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("Bank App", "Bank Apps"),
        ("Budget Insight", "Budget Insights"),
        ("Linxo", "Lydia"),
        ("Caf\u00e9 Budget", "Cafe Budget"),
    ],
)
def test_names_a_psu_tells_apart_are_not_confusable(ours: str, theirs: str) -> None:
    assert not confusable_names(ours, theirs)


def test_name_skeletons_keep_one_case_sensitive_and_one_folded() -> None:
    assert name_skeletons("Budget  Insight") == ("Budget lnsight", "budget insight")


@pytest.mark.parametrize(
    ("name", "word"),
    [
        (f"P{CYRILLIC_A}ypal Ltd", f"P{CYRILLIC_A}ypal"),
        (f"Bank Ph{GREEK_OMICRON}ne", f"Ph{GREEK_OMICRON}ne"),
        ("\u0531pp Store", "\u0531pp"),  # ARMENIAN CAPITAL LETTER AYB + Latin
    ],
)
def test_a_word_mixing_look_alike_alphabets_is_found(name: str, word: str) -> None:
    assert mixed_script_word(name) == word


@pytest.mark.parametrize(
    "name",
    [
        "Budget Insight",
        "\u00c9pargne \u2014 \u65e5\u672c",  # Latin, punctuation and Han
        "\u0391\u03b8\u03ae\u03bd\u03b1 Bank",  # a Greek word and a Latin word
        "\u041c\u043e\u0439 \u0411\u0430\u043d\u043a",  # Cyrillic only
        "\uff21b 24/7",  # fullwidth Latin with Latin, digits
    ],
)
def test_single_alphabet_words_are_not_mixed(name: str) -> None:
    assert mixed_script_word(name) is None
