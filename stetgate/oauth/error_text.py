"""``error_description`` text within the characters RFC 6749 allows.

RFC 6749 §5.2 and §4.1.2.1: "Values for the error_description parameter MUST NOT include
characters outside the set %x20-21 / %x23-5B / %x5D-7E" — printable ASCII without ``"`` and
``\\``. stetgate's messages cite their rules ("… (RFC 7636 §4.6)") and strict OAuth client
libraries refuse a body carrying ``§`` (found by an outside STET conformance run). Messages are
written for people, so rather than forbid typography in every message, each one is folded to the
allowed set where errors are built: ``§`` → "section", dashes and quotes to their ASCII forms,
accented letters to their base letters, anything else left outside → ``?``.
"""

from __future__ import annotations

import re
import unicodedata

_REPLACEMENTS = {
    "§": "section ",
    "—": "-",
    "–": "-",
    "‑": "-",
    "’": "'",
    "‘": "'",
    "“": "'",
    "”": "'",
    '"': "'",
    "«": "'",
    "»": "'",
    "…": "...",
    "→": "->",
    "←": "<-",
    "×": "x",
    "≥": ">=",
    "≤": "<=",
    "\\": "/",
    "\u00a0": " ",
    "\u202f": " ",
}
_TABLE = str.maketrans(_REPLACEMENTS)
_OUTSIDE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
_SPACES = re.compile(r" {2,}")


def error_description(text: str) -> str:
    """``text`` folded into RFC 6749 §5.2's ``error_description`` character set."""
    folded = unicodedata.normalize("NFKD", text.translate(_TABLE))
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    cleaned = _OUTSIDE.sub("?", ascii_only.replace("\t", " ").replace("\n", " "))
    return _SPACES.sub(" ", cleaned).strip()


def is_error_description(text: str) -> bool:
    """Whether ``text`` is within the allowed set already."""
    return _OUTSIDE.search(text) is None


__all__ = ["error_description", "is_error_description"]
