"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7), with ``acr`` as the SCA proof.

The signature is checked by joserfc against the OP's key set (never hand-written crypto); the
claims are checked here, against the app's injected clock so that tests move time:

1. ``iss`` is the configured issuer exactly (§3.1.3.7 step 2);
2. ``aud`` contains stetgate's client_id, and an ``azp`` if present is it (steps 3–5);
3. the signature, with an asymmetric algorithm only (steps 6–8; ``none`` and HMAC are refused);
4. ``exp`` is in the future and ``iat`` not in the future, with a small leeway (steps 9–10);
5. ``nonce`` is the one the journey sent (step 11, §15.5.2): compared as digests;
6. ``acr`` is one the bank accepts as strong customer authentication (step 12; PSD2 RTS
   (EU) 2018/389 Art. 4) — an OP that authenticated the PSU more weakly is refused;
7. ``auth_time``, when present, is not in the future, and not before the journey started
   (step 13): stetgate asks for ``prompt=login``, and an OP that answered from an older
   session did not authenticate the PSU for this grant; ``amr`` (§2) is recorded.

Failures raise `IdTokenRefused` with a short machine reason (audit trail), never the token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from stetgate.secrets import same_secret, secret_hash

SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


class IdTokenRefused(Exception):
    """The ID token is not acceptable; ``reason`` is a short code for the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ScaEvidence:
    """What the OP asserted about the PSU's authentication (recorded in the audit trail)."""

    psu_id: str
    issuer: str
    acr: str
    amr: tuple[str, ...]
    auth_time: datetime | None

    def audit_detail(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "acr": self.acr,
            "amr": list(self.amr),
            "auth_time": self.auth_time.isoformat() if self.auth_time else None,
        }


@dataclass(frozen=True)
class Expectations:
    issuer: str
    client_id: str
    nonce_hash: str
    accepted_acr: frozenset[str]
    psu_id_claim: str
    leeway_seconds: int
    authenticated_after: datetime | None = None
    """The journey's start: an ``auth_time`` before it is an earlier authentication."""


def header_kid(id_token: str) -> str | None:
    """The ``kid`` of the token's protected header (to pick or refetch the key set)."""
    try:
        kid = jws.extract_compact(id_token.encode()).headers().get("kid")
    except (JoseError, ValueError) as exc:
        raise IdTokenRefused("malformed") from exc
    return kid if isinstance(kid, str) else None


def _instant(claims: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdTokenRefused(f"{name}_missing" if value is None else f"{name}_invalid")
    return datetime.fromtimestamp(value, UTC)


def validate_id_token(
    id_token: str,
    keys_for: Callable[[str | None], KeySet],
    expect: Expectations,
    now: datetime,
) -> ScaEvidence:
    """Check ``id_token`` (steps above); `keys_for(kid)` gives the OP's key set for its kid."""
    kid = header_kid(id_token)
    try:
        token = jwt.decode(id_token, keys_for(kid), algorithms=list(SIGNING_ALGORITHMS))
    except JoseError as exc:
        raise IdTokenRefused(f"signature: {exc.error}") from exc
    except ValueError as exc:  # no key for the kid, a malformed token
        raise IdTokenRefused("signature: no matching key") from exc
    claims = dict(token.claims)
    if claims.get("iss") != expect.issuer:
        raise IdTokenRefused("iss")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or expect.client_id not in audiences:
        raise IdTokenRefused("aud")
    if "azp" in claims and claims["azp"] != expect.client_id:
        raise IdTokenRefused("azp")
    leeway = timedelta(seconds=expect.leeway_seconds)
    expires = _instant(claims, "exp", required=True)
    issued = _instant(claims, "iat", required=True)
    assert expires is not None and issued is not None
    if expires + leeway <= now:
        raise IdTokenRefused("expired")
    if issued - leeway > now:
        raise IdTokenRefused("iat_in_future")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not same_secret(secret_hash(nonce), expect.nonce_hash):
        raise IdTokenRefused("nonce")
    acr = claims.get("acr")
    if not isinstance(acr, str) or acr not in expect.accepted_acr:
        raise IdTokenRefused("acr")
    auth_time = _instant(claims, "auth_time", required=False)
    if auth_time is not None and auth_time - leeway > now:
        raise IdTokenRefused("auth_time_in_future")
    after = expect.authenticated_after
    if auth_time is not None and after is not None and auth_time + leeway < after:
        raise IdTokenRefused("auth_time_stale")
    amr = claims.get("amr", [])
    if not isinstance(amr, list) or not all(isinstance(item, str) for item in amr):
        raise IdTokenRefused("amr_invalid")
    psu_id = claims.get(expect.psu_id_claim)
    if not isinstance(psu_id, str) or not psu_id:
        raise IdTokenRefused("psu_id_claim")
    return ScaEvidence(
        psu_id=psu_id, issuer=expect.issuer, acr=acr, amr=tuple(amr), auth_time=auth_time
    )
