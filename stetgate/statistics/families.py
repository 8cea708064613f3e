"""Endpoint families: the "types of request" whose response times EBA/GL/2018/07 guideline
2.3 asks to be measured apart, told from the request path alone.

The paths belong to the HTTP domains (above this package), so `stetgate.app` builds the rule
table from their constants; this module only knows how rules match. A path no rule names
(health checks, the register API, metadata, CRLs, static files) is not part of the published
statistics and is not recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

AUTHORIZATION: Final = "authorization"
"""The PSU's redirection journey at the bank: ``/authorize`` and the PSU pages."""
TOKEN: Final = "token"  # noqa: S105 - a family name
"""The token endpoint and its companions (revocation, introspection)."""
AISP: Final = "aisp"
"""STET account information: accounts, balances, transactions, consents, identity,
trusted beneficiaries."""
CBPII: Final = "cbpii"
"""STET confirmation of the availability of funds."""

FAMILIES: Final = (AUTHORIZATION, TOKEN, AISP, CBPII)
"""Every family, in the order the report shows them."""

INFORMATION_FAMILIES: Final = frozenset({AISP, CBPII})
"""The requests EBA/GL/2018/07 GL 2.4(c) counts for downtime: "requests for access to
information for the provision of … account information services or confirmation of
availability of funds"."""


@dataclass(frozen=True)
class PathRule:
    """``prefix`` (the path itself or anything below it) belongs to ``family``; None keeps a
    sub-tree of a recorded prefix out (static files under the PSU pages)."""

    prefix: str
    family: str | None

    def __post_init__(self) -> None:
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(f"unknown endpoint family {self.family!r}")
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ValueError(f"a prefix starts with / and does not end with one: {self.prefix!r}")


class EndpointFamilies:
    """First matching rule wins, so exclusions come before the prefix they carve out of."""

    def __init__(self, rules: Sequence[PathRule]) -> None:
        self._rules = tuple((r.prefix, r.prefix + "/", r.family) for r in rules)
        self._any_prefix = tuple(r.prefix for r in rules if r.family is not None)

    def classify(self, path: str) -> str | None:
        """The family of ``path``, or None when it is not recorded. Segment-wise: ``/psu``
        matches ``/psu/login``, not ``/psuedo``. Runs on every request: paths under no
        recorded prefix are refused by one ``str.startswith`` on all prefixes at once."""
        if not path.startswith(self._any_prefix):
            return None
        for prefix, below, family in self._rules:
            if path == prefix or path.startswith(below):
                return family
        return None
