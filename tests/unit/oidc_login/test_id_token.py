"""ID token checks (OIDC Core §3.1.3.7) one by one, with keys made here: every claim rule
refuses on its own, and the signature check takes only the OP's asymmetric keys."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from stetgate.oidc_login.id_token import (
    Expectations,
    IdTokenRefused,
    header_kid,
    validate_id_token,
)
from stetgate.secrets import secret_hash

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
ISSUER = "https://op.bank.example"
NONCE = "n-0S6_WzA2Mj"
OP_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
KEYS = KeySet([OP_KEY])

EXPECT = Expectations(
    issuer=ISSUER,
    client_id="stetgate",
    nonce_hash=secret_hash(NONCE),
    accepted_acr=frozenset({"urn:bank:sca"}),
    psu_id_claim="sub",
    leeway_seconds=30,
)


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "stetgate",
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
        "iat": int(NOW.timestamp()),
        "auth_time": int((NOW - timedelta(seconds=20)).timestamp()),
        "nonce": NONCE,
        "acr": "urn:bank:sca",
        "amr": ["pwd", "otp"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key: Any = OP_KEY, alg: str = "RS256", **changes: Any) -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, _claims(**changes), key)


def _check(token: str, expect: Expectations = EXPECT, now: datetime = NOW) -> Any:
    return validate_id_token(token, lambda kid: KEYS, expect, now)


def _refused(token: str, reason: str, **kwargs: Any) -> None:
    with pytest.raises(IdTokenRefused) as caught:
        _check(token, **kwargs)
    assert caught.value.reason.startswith(reason), caught.value.reason


def test_a_valid_token_gives_the_sca_evidence() -> None:
    evidence = _check(_token())
    assert evidence.psu_id == "alice"
    assert evidence.acr == "urn:bank:sca"
    assert evidence.amr == ("pwd", "otp")
    assert evidence.auth_time == NOW - timedelta(seconds=20)
    assert evidence.audit_detail()["iss"] == ISSUER
    assert header_kid(_token()) == "k1"


def test_audience_list_with_the_client_and_its_azp_is_accepted() -> None:
    assert _check(_token(aud=["stetgate", "other"], azp="stetgate")).psu_id == "alice"


def test_signature_by_another_key_is_refused() -> None:
    _refused(_token(OTHER_KEY), "signature")


def test_symmetric_algorithm_is_refused() -> None:
    secret = OctKey.import_key("a" * 32)
    _refused(jwt.encode({"alg": "HS256", "kid": "k1"}, _claims(), secret), "signature")


def test_unsigned_token_is_refused() -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    _refused(f"{part({'alg': 'none', 'kid': 'k1'})}.{part(_claims())}.", "signature")


def test_malformed_token_is_refused() -> None:
    _refused("not.a-token", "malformed")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "another-client"}, "aud"),
        ({"aud": ["another-client"]}, "aud"),
        ({"aud": ["stetgate"], "azp": "another-client"}, "azp"),
        ({"exp": None}, "exp_missing"),
        ({"exp": "tomorrow"}, "exp_invalid"),
        ({"exp": int((NOW - timedelta(seconds=31)).timestamp())}, "expired"),
        ({"iat": int((NOW + timedelta(seconds=31)).timestamp())}, "iat_in_future"),
        ({"nonce": None}, "nonce"),
        ({"nonce": "another"}, "nonce"),
        ({"acr": None}, "acr"),
        ({"acr": "urn:bank:password"}, "acr"),
        ({"auth_time": int((NOW + timedelta(minutes=2)).timestamp())}, "auth_time_in_future"),
        ({"amr": "pwd"}, "amr_invalid"),
        ({"sub": ""}, "psu_id_claim"),
    ],
)
def test_each_claim_rule_refuses_on_its_own(changes: dict[str, Any], reason: str) -> None:
    _refused(_token(**changes), reason)


def test_leeway_accepts_a_token_expired_within_it() -> None:
    assert _check(_token(exp=int((NOW - timedelta(seconds=29)).timestamp()))).psu_id == "alice"


def test_the_injected_clock_decides_expiry() -> None:
    token = _token()
    _refused(token, "expired", now=NOW + timedelta(minutes=6))


def test_authentication_before_the_journey_is_refused() -> None:
    started = NOW - timedelta(seconds=5)
    expect = Expectations(**{**EXPECT.__dict__, "authenticated_after": started})
    assert _check(_token(), expect).psu_id == "alice"  # 20 s before: within the leeway
    stale = int((started - timedelta(seconds=31)).timestamp())
    _refused(_token(auth_time=stale), "auth_time_stale", expect=expect)


def test_psu_id_from_a_configured_claim() -> None:
    expect = Expectations(**{**EXPECT.__dict__, "psu_id_claim": "bank_customer_id"})
    assert _check(_token(bank_customer_id="C-123"), expect).psu_id == "C-123"
    _refused(_token(), "psu_id_claim", expect=expect)
