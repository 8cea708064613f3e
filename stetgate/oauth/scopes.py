"""Scopes, and the PSD2 role each one needs (docs/decisions.md#scopes-and-roles).

A TPP holding both AISP and CBPII roles gets separate token pairs per role, so every
authorization has exactly one *role scope* (``aisp`` or ``cbpii``);
``extended_transaction_history`` is an add-on to ``aisp`` only.
"""

from __future__ import annotations

from stetgate.eidas import Psd2Role

AISP = "aisp"
CBPII = "cbpii"
EXTENDED_HISTORY = "extended_transaction_history"
MANAGE_REGISTRATION = "manageRegistration"

ROLE_FOR_SCOPE: dict[str, Psd2Role] = {AISP: Psd2Role.PSP_AI, CBPII: Psd2Role.PSP_IC}


class ScopeError(ValueError):
    """The requested scope is not one stetgate grants through the authorization code flow."""


def parse_authorization_scope(
    raw: str | None, *, allow_extended_history: bool
) -> tuple[str, frozenset[str]]:
    """Return (role scope, all scopes) for an /authorize request, or raise ScopeError.

    Exactly one of ``aisp``/``cbpii``; ``extended_transaction_history`` only with ``aisp`` and
    only when the bank allows it (BPCE does not: setting ``allow_extended_history``).
    """
    if not raw or not raw.strip():
        raise ScopeError("scope is required (aisp or cbpii)")
    items = raw.split()
    scopes = frozenset(items)
    if len(scopes) != len(items):
        raise ScopeError("scope repeats a value")
    roles = scopes & ROLE_FOR_SCOPE.keys()
    unknown = scopes - ROLE_FOR_SCOPE.keys() - {EXTENDED_HISTORY}
    if unknown:
        raise ScopeError(f"unknown scope {sorted(unknown)[0]!r}")
    if len(roles) != 1:
        raise ScopeError("scope must contain exactly one of aisp, cbpii (one token pair per role)")
    role = next(iter(roles))
    if EXTENDED_HISTORY in scopes:
        if role != AISP:
            raise ScopeError("extended_transaction_history is only an add-on to aisp")
        if not allow_extended_history:
            raise ScopeError("extended_transaction_history is not offered by this bank")
    return role, scopes


def format_scope(scopes: frozenset[str] | set[str]) -> str:
    """Space-separated, role scope first (stable output for clients and tests)."""
    return " ".join(sorted(scopes, key=lambda s: (s not in ROLE_FOR_SCOPE, s)))
