"""The pure rules of the token side, with a frozen clock: client/certificate binding, the code
exchange (RFC 6749 §4.1.3, RFC 7636 §4.6), the refresh (RFC 6749 §6,
docs/decisions.md#refresh), lifetimes and the metadata document (RFC 8414)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from stetgate.clock import FrozenClock
from stetgate.eidas import CertificateRevoked, Psd2Role, UnknownIssuer
from stetgate.oauth.authorization_code import (
    CodeReplayed,
    StoredCode,
    check_code_redemption,
    pair_lifetimes,
)
from stetgate.oauth.client_auth import (
    certificate_refusal,
    check_certificate_matches_client,
    require_role_for_scope,
    role_scopes_of,
)
from stetgate.oauth.clients import CLIENT_SUSPENDED
from stetgate.oauth.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
)
from stetgate.oauth.metadata import authorization_server_metadata
from stetgate.oauth.pkce import s256_challenge
from stetgate.oauth.refresh import refresh_refusal, requested_role_scope
from stetgate.oauth.refreshable import RefreshLimits
from stetgate.oauth.token_pairs import TokenPair
from stetgate.serving.tpp_identity import NoClientCertificate
from stetgate.settings import Settings
from tests.unit.oauth.conftest import START, certificate, client

ORG = "PSDFR-ACPR-50001"
CALLBACK = "https://tpp.example/cb"
VERIFIER = "x" * 50


def _code(**changes: object) -> StoredCode:
    code = StoredCode(
        code_hash="h" * 64,
        client_id=ORG,
        org_id=ORG,
        psu_id="psu-1",
        redirect_uri=CALLBACK,
        scope="aisp",
        code_challenge=None,
        code_challenge_method=None,
        sca_at=START,
        expires_at=START + timedelta(seconds=60),
        used_at=None,
        grant_id=None,
    )
    return replace(code, **changes)  # type: ignore[arg-type]


def _redeem(code: StoredCode | None, clock: FrozenClock, **kwargs: object) -> object:
    arguments: dict[str, object] = {
        "client": client(),
        "certificate": certificate(),
        "redirect_uri": CALLBACK,
        "code_verifier": None,
        "requested_scope": None,
        "now": clock.now(),
    }
    arguments.update(kwargs)
    return check_code_redemption(code, **arguments)  # type: ignore[arg-type]


# --- client authentication (RFC 8705 §2, STET §3.4) -------------------------------------------


def test_golive_client_id_must_equal_the_organization() -> None:
    check_certificate_matches_client(client(), certificate())
    with pytest.raises(InvalidClient) as caught:
        check_certificate_matches_client(client(), certificate("PSDFR-ACPR-50002"))
    assert caught.value.description == (
        "certificate organizationIdentifier PSDFR-ACPR-50002 does not match client PSDFR-ACPR-50001"
    )


def test_register_client_matches_through_its_organization() -> None:
    registered = client("0f1e2d3c", ORG, origin="register")
    check_certificate_matches_client(registered, certificate())
    with pytest.raises(InvalidClient):
        check_certificate_matches_client(registered, certificate("PSDFR-ACPR-50002"))


def test_golive_client_with_inconsistent_organization_is_refused() -> None:
    with pytest.raises(InvalidClient):
        check_certificate_matches_client(client(ORG, "PSDFR-ACPR-50002"), certificate())


@pytest.mark.parametrize(
    ("roles", "scope", "allowed"),
    [
        ((Psd2Role.PSP_AI,), "aisp", True),
        ((Psd2Role.PSP_IC,), "cbpii", True),
        ((Psd2Role.PSP_IC,), "aisp", False),
        ((Psd2Role.PSP_AI,), "cbpii", False),
        ((Psd2Role.PSP_PI, Psd2Role.PSP_AS), "aisp", False),
        ((Psd2Role.PSP_AI,), "pisp", False),
    ],
)
def test_role_for_scope(roles: tuple[Psd2Role, ...], scope: str, allowed: bool) -> None:
    cert = certificate(roles=roles)
    if allowed:
        require_role_for_scope(cert, scope)
    else:
        with pytest.raises(UnauthorizedClient):
            require_role_for_scope(cert, scope)


def test_role_scopes_of_a_certificate() -> None:
    assert role_scopes_of(certificate()) == {"aisp", "cbpii"}
    assert role_scopes_of(certificate(roles=(Psd2Role.PSP_PI,))) == frozenset()


def test_certificate_problems_are_invalid_client_with_the_reason() -> None:
    revoked = certificate_refusal(CertificateRevoked("serial 01 revoked on 2026-01-01"))
    assert revoked.status_code == 401
    assert revoked.description == "certificate revoked: serial 01 revoked on 2026-01-01"
    missing = certificate_refusal(NoClientCertificate("none"))
    assert missing.description.startswith("no client certificate")
    long = certificate_refusal(UnknownIssuer("x" * 1000))
    assert len(long.description) < 300


# --- authorization code exchange (RFC 6749 §4.1.3) --------------------------------------------


def test_valid_code_is_redeemed(clock: FrozenClock) -> None:
    redemption = _redeem(_code(), clock)
    assert (redemption.role, redemption.scope) == ("aisp", "aisp")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "kwargs", "error", "fragment"),
    [
        (None, {}, InvalidGrant, "unknown"),
        (_code(client_id="PSDFR-ACPR-50002"), {}, InvalidGrant, "another client"),
        (_code(used_at=START), {}, CodeReplayed, "already used"),
        (_code(org_id="PSDFR-ACPR-50002"), {}, InvalidGrant, "another organization"),
        (_code(), {"redirect_uri": CALLBACK + "/"}, InvalidGrant, "redirect_uri"),
        (_code(), {"requested_scope": "aisp cbpii"}, InvalidScope, "exceeds"),
        (
            _code(scope="aisp extended_transaction_history"),
            {"requested_scope": "extended_transaction_history"},
            InvalidScope,
            "role scope",
        ),
        (
            _code(),
            {"certificate": certificate(roles=(Psd2Role.PSP_IC,))},
            UnauthorizedClient,
            "PSP_AI",
        ),
        (_code(), {"code_verifier": VERIFIER}, InvalidGrant, "no code_challenge"),
        (
            _code(code_challenge=s256_challenge(VERIFIER), code_challenge_method="S256"),
            {},
            InvalidGrant,
            "required",
        ),
        (
            _code(code_challenge=s256_challenge(VERIFIER), code_challenge_method="S256"),
            {"code_verifier": "y" * 50},
            InvalidGrant,
            "does not match",
        ),
        (
            _code(code_challenge=s256_challenge(VERIFIER), code_challenge_method="S256"),
            {"code_verifier": "bad"},
            InvalidRequest,
            "RFC 7636",
        ),
        (
            _code(code_challenge=VERIFIER, code_challenge_method="plain"),
            {"code_verifier": VERIFIER},
            InvalidGrant,
            "S256",
        ),
        (_code(), {"client": client(require_pkce=True)}, InvalidGrant, "must use PKCE"),
    ],
)
def test_code_exchange_refusals(
    clock: FrozenClock,
    code: StoredCode | None,
    kwargs: dict[str, object],
    error: type[OAuthError],
    fragment: str,
) -> None:
    with pytest.raises(error) as caught:
        _redeem(code, clock, **kwargs)
    assert type(caught.value) is error
    assert fragment in caught.value.description


def test_code_expires_after_its_lifetime(clock: FrozenClock) -> None:
    clock.advance(59.999)
    _redeem(_code(), clock)
    clock.advance(0.001)
    with pytest.raises(InvalidGrant, match="expired"):
        _redeem(_code(), clock)


def test_pkce_s256_is_accepted(clock: FrozenClock) -> None:
    code = _code(code_challenge=s256_challenge(VERIFIER), code_challenge_method="S256")
    _redeem(code, clock, code_verifier=VERIFIER)


def test_scope_may_narrow_but_keeps_the_role(clock: FrozenClock) -> None:
    code = _code(scope="aisp extended_transaction_history")
    assert _redeem(code, clock).scope == "aisp extended_transaction_history"  # type: ignore[attr-defined]
    assert _redeem(code, clock, requested_scope="aisp").scope == "aisp"  # type: ignore[attr-defined]


def test_lifetimes_follow_the_settings() -> None:
    settings = Settings(sca_validity_days=90, access_token_ttl_seconds=3600)
    refresh, access = pair_lifetimes(settings, START, START + timedelta(seconds=30))
    assert refresh == START + timedelta(days=90)
    assert access == START + timedelta(seconds=3630)
    late = START + timedelta(days=90) - timedelta(minutes=10)
    assert pair_lifetimes(settings, START, late)[1] == refresh


# --- refresh (RFC 6749 §6, docs/decisions.md#refresh) ------------------------------------------


def _grant(**changes: object) -> TokenPair:
    grant = TokenPair(
        id="g1",
        client_id=ORG,
        org_id=ORG,
        psu_id="psu-1",
        role="aisp",
        scope="aisp",
        sca_at=START,
        created_at=START,
        refresh_expires_at=START + timedelta(days=90),
        access_scope="aisp",
        access_expires_at=START + timedelta(hours=1),
        access_cnf="cnf",
        last_used_at=START,
        revoked_at=None,
        revoked_reason=None,
    )
    return replace(grant, **changes)  # type: ignore[arg-type]


def _refusal(grant: TokenPair, clock: FrozenClock, **kwargs: object) -> OAuthError | None:
    arguments: dict[str, object] = {
        "client": client(),
        "client_id": ORG,
        "certificate": certificate(),
        "requested_role": None,
        "now": clock.now(),
        "limits": RefreshLimits(sca_validity_days=90),
    }
    arguments.update(kwargs)
    return refresh_refusal(grant, **arguments)  # type: ignore[arg-type]


def test_refreshable_grant_has_no_refusal(clock: FrozenClock) -> None:
    clock.advance(days=89)
    assert _refusal(_grant(), clock) is None


@pytest.mark.parametrize(
    ("grant", "kwargs", "error", "fragment"),
    [
        (_grant(client_id="other"), {}, InvalidGrant, "another client"),
        (_grant(org_id="PSDFR-ACPR-50002"), {}, InvalidGrant, "another organization"),
        (
            _grant(revoked_at=START, revoked_reason="superseded"),
            {},
            InvalidGrant,
            "revoked (superseded)",
        ),
        (_grant(refresh_expires_at=START), {}, InvalidGrant, "expired"),
        (_grant(), {"limits": RefreshLimits(0)}, InvalidGrant, "older than 0 days"),
        (_grant(), {"requested_role": "cbpii"}, InvalidScope, "role scope is aisp"),
        (
            _grant(),
            {"certificate": certificate(roles=(Psd2Role.PSP_IC,))},
            UnauthorizedClient,
            "PSP_AI",
        ),
        (_grant(), {"client": client(status=CLIENT_SUSPENDED)}, UnauthorizedClient, "suspended"),
        (_grant(), {"client": None}, UnauthorizedClient, "no longer registered"),
        (
            _grant(),
            {"client": client(ORG, "PSDFR-ACPR-50002", origin="register")},
            InvalidClient,
            "does not match",
        ),
    ],
)
def test_refresh_refusals(
    clock: FrozenClock,
    grant: TokenPair,
    kwargs: dict[str, object],
    error: type[OAuthError],
    fragment: str,
) -> None:
    refusal = _refusal(grant, clock, **kwargs)
    assert type(refusal) is error
    assert refusal is not None and fragment in refusal.description


def test_refresh_is_refused_once_the_sca_is_sca_validity_days_old(clock: FrozenClock) -> None:
    grant = _grant(refresh_expires_at=START + timedelta(days=365))
    clock.advance(days=90, seconds=-1)
    assert _refusal(grant, clock) is None
    clock.advance(1)
    refusal = _refusal(grant, clock)
    assert isinstance(refusal, InvalidGrant) and "older than 90 days" in refusal.description


@pytest.mark.parametrize(
    ("scope", "expected"), [(None, None), ("aisp", "aisp"), ("cbpii", "cbpii")]
)
def test_scope_on_refresh_is_the_role_scope(scope: str | None, expected: str | None) -> None:
    assert requested_role_scope(scope) == expected


@pytest.mark.parametrize(
    "scope",
    ["aisp extended_transaction_history", "extended_transaction_history", "aisp cbpii", "pisp"],
)
def test_wider_scope_on_refresh_is_invalid_scope(scope: str) -> None:
    with pytest.raises(InvalidScope):
        requested_role_scope(scope)


# --- metadata (RFC 8414) -----------------------------------------------------------------------


def test_metadata_lists_registered_grants_and_scopes() -> None:
    document = authorization_server_metadata(
        "https://bank.example", Settings(), ["refresh_token", "authorization_code"]
    )
    assert document["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert document["scopes_supported"] == ["aisp", "cbpii"]
    assert document["token_endpoint"] == "https://bank.example/stet/psd2/oauth/token"
    with_register = authorization_server_metadata(
        "https://bank.example",
        Settings(allow_extended_history=True),
        ["authorization_code", "client_credentials", "refresh_token"],
    )
    assert with_register["scopes_supported"] == [
        "aisp",
        "cbpii",
        "extended_transaction_history",
        "manageRegistration",
    ]
