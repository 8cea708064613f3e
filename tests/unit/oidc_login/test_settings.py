"""The OIDC settings refuse an incomplete or unsafe delegated-login configuration at start."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stetgate.settings import Settings

GOOD: dict[str, Any] = dict(
    oidc_issuer="https://op.bank.example",
    oidc_client_id="stetgate",
    oidc_client_secret="s3cret",
    oidc_acr_values=["urn:bank:sca"],
)


def test_complete_configuration_is_accepted() -> None:
    settings = Settings(**GOOD)
    assert settings.oidc_enabled
    assert settings.resolved_oidc_accepted_acr == {"urn:bank:sca"}
    assert not Settings().oidc_enabled


def test_accepted_acr_can_differ_from_the_requested_ones() -> None:
    settings = Settings(**{**GOOD, "oidc_accepted_acr": ["urn:bank:sca", "urn:bank:fido"]})
    assert settings.resolved_oidc_accepted_acr == {"urn:bank:sca", "urn:bank:fido"}


def test_loopback_http_issuer_is_allowed_for_a_local_op() -> None:
    assert Settings(**{**GOOD, "oidc_issuer": "http://127.0.0.1:4000"}).oidc_enabled


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"oidc_issuer": "http://op.bank.example"}, "https"),
        ({"oidc_client_id": None}, "oidc_client_id"),
        ({"oidc_client_secret": None}, "oidc_client_secret"),
        ({"oidc_client_auth": "private_key_jwt"}, "oidc_private_key_file"),
        ({"oidc_scopes": ["profile"]}, "openid"),
        ({"oidc_acr_values": []}, "acr"),
    ],
)
def test_incomplete_configuration_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{**GOOD, **changes})


def test_client_secret_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(Settings(**GOOD))
