"""What a TPP keeps from one authorization: the pending request and the tokens (steps 2 and 8
of docs/decisions.md#the-cinematic)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stetgate.clock import SystemClock


@dataclass
class TokenSet:
    """Tokens from one authorization, as the TPP must keep them (step 8 of
    docs/decisions.md#the-cinematic)."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str
    obtained_at: datetime = field(default_factory=lambda: SystemClock().now())

    @property
    def access_expires_at(self) -> datetime:
        return self.obtained_at + timedelta(seconds=self.expires_in)

    def needs_refresh(self, now: datetime, margin_seconds: int = 60) -> bool:
        return now >= self.access_expires_at - timedelta(seconds=margin_seconds)

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        previous: TokenSet | None = None,
        *,
        obtained_at: datetime | None = None,
    ) -> TokenSet:
        """Keep the old refresh token when the bank does not return one (BPCE returns the same
        one; a rotating bank returns a new one — either way store what you get)."""
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=refresh,
            expires_in=int(body.get("expires_in", 3600)),
            scope=str(body.get("scope", previous.scope if previous else "")),
            obtained_at=obtained_at or SystemClock().now(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "scope": self.scope,
            "obtained_at": self.obtained_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_in=int(data["expires_in"]),
            scope=data.get("scope", ""),
            obtained_at=datetime.fromisoformat(data["obtained_at"]),
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the TPP must remember between the redirect and the callback."""

    url: str
    state: str
    code_verifier: str | None
    redirect_uri: str
    scope: str


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
