"""Which endpoint family a path belongs to (EBA/GL/2018/07 GL 2.3 "per type of request")."""

from __future__ import annotations

import pytest

from stetgate.app import endpoint_families
from stetgate.statistics.families import (
    AISP,
    AUTHORIZATION,
    CBPII,
    TOKEN,
    EndpointFamilies,
    PathRule,
)

API = "/stet/psd2/v1.4.2"

CASES = [
    ("/stet/psd2/oauth/authorize", AUTHORIZATION),
    ("/psu/login", AUTHORIZATION),
    ("/psu/sca/method", AUTHORIZATION),
    ("/psu/consent", AUTHORIZATION),
    ("/psu/oidc/callback", AUTHORIZATION),
    ("/stet/psd2/oauth/token", TOKEN),
    ("/stet/psd2/oauth/revoke", TOKEN),
    ("/stet/psd2/oauth/introspect", TOKEN),
    (f"{API}/accounts", AISP),
    (f"{API}/accounts/acc-1/balances", AISP),
    (f"{API}/accounts/acc%2F1/transactions", AISP),
    (f"{API}/consents", AISP),
    (f"{API}/end-user-identity", AISP),
    (f"{API}/trusted-beneficiaries", AISP),
    (f"{API}/funds-confirmations", CBPII),
]

NOT_RECORDED = [
    "/psu/static/psu.css",  # static files of the PSU pages
    "/psu/static",
    f"{API}/openapi.json",
    f"{API}",
    f"{API}/accountsx",  # not below /accounts: segment-wise
    f"{API}/funds-confirmations-old",
    "/psuedo",
    "/health/live",
    "/health/ready",
    "/stet/setting/v1/register",
    "/.well-known/oauth-authorization-server",
    "/qtsp/crl/qtsp.crl",
    "/tpp/certificate",
    "/stet/psd2/oauth/tokens",
    "/",
    "",
]


@pytest.mark.parametrize(("path", "family"), CASES)
def test_each_endpoint_of_the_interface_has_its_family(path: str, family: str) -> None:
    assert endpoint_families().classify(path) == family


@pytest.mark.parametrize("path", NOT_RECORDED)
def test_paths_outside_the_published_families_are_not_recorded(path: str) -> None:
    assert endpoint_families().classify(path) is None


def test_the_first_matching_rule_wins() -> None:
    families = EndpointFamilies([PathRule("/a/b", None), PathRule("/a", AISP)])
    assert families.classify("/a/b/c") is None
    assert families.classify("/a/c") == AISP
    reversed_rules = EndpointFamilies([PathRule("/a", AISP), PathRule("/a/b", None)])
    assert reversed_rules.classify("/a/b/c") == AISP


@pytest.mark.parametrize(
    ("prefix", "family"),
    [("/x", "payments"), ("x", AISP), ("/x/", AISP), ("", AISP), ("/x", "")],
)
def test_a_rule_with_an_unknown_family_or_a_malformed_prefix_is_refused(
    prefix: str, family: str
) -> None:
    with pytest.raises(ValueError):
        PathRule(prefix, family)
