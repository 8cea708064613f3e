"""`AuthorizationRequest`: what a TPP asked for at ``/authorize``, once validated.

One value carried from the authorization endpoint through the PSU's journey to the
authorization code (and from the code to the token pair's scope), so each step reads the same
fields instead of copying them one by one (RFC 6749 §4.1.1; RFC 7636 §4.3 for the PKCE pair).
"""

from __future__ import annotations

from dataclasses import dataclass

from stetgate.oauth.scopes import AISP, CBPII


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    """Exactly as sent, and registered for the client (RFC 6749 §3.1.2.3)."""
    scope: str
    """The granted scope, normalised (``aisp`` or ``cbpii``, maybe with add-ons)."""
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None

    @property
    def role_scope(self) -> str:
        """The one PSD2 role scope of the request: a token pair is per role (one pair per
        PSU, organization and role; docs/decisions.md#one-pair-per-psu-organization-and-role)."""
        return CBPII if CBPII in self.scope.split() else AISP
