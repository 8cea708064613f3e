"""The redirect-URI and client-name policy, and proof that the register API's metadata reader
applies exactly it (the same table runs against ``stetgate clients add`` in
tests/integration/test_clients_cli.py)."""

from __future__ import annotations

from typing import Any

import pytest

from stetgate.registry.client_metadata_policy import (
    MAX_REDIRECT_URIS,
    check_redirect_uri,
    client_name_of,
    name_key,
    redirect_uris_of,
)
from stetgate.registry.errors import InvalidClientMetadata, InvalidRedirectUri
from stetgate.registry.metadata_rules import TLS_CLIENT_AUTH, client_metadata_of
from tests.support.client_metadata_cases import (
    ACCEPTED_CLIENT_NAMES,
    ACCEPTED_REDIRECT_URIS,
    REFUSED_CLIENT_NAMES,
    REFUSED_REDIRECT_URIS,
    Refused,
)


def _metadata(**fields: Any) -> dict[str, Any]:
    """The fields of a register API body that `client_metadata_of` reads (``jwks`` is read
    apart, by `seal_key_of`)."""
    return {
        "token_endpoint_auth_method": TLS_CLIENT_AUTH,
        "redirect_uris": ["https://tpp.example/callback"],
        "client_name": "Budget Insight",
        **fields,
    }


# --------------------------------------------------------------------------- redirect URIs


@pytest.mark.parametrize("case", REFUSED_REDIRECT_URIS)
def test_the_policy_refuses_the_redirect_uri(case: Refused) -> None:
    with pytest.raises(InvalidRedirectUri, match=case.why):
        check_redirect_uri(case.value)


@pytest.mark.parametrize("case", REFUSED_REDIRECT_URIS)
def test_the_register_api_refuses_the_same_redirect_uri(case: Refused) -> None:
    document = _metadata(redirect_uris=["https://ok.example/cb", case.value])
    with pytest.raises(InvalidRedirectUri, match=case.why):
        client_metadata_of(document)


@pytest.mark.parametrize("uri", ACCEPTED_REDIRECT_URIS)
def test_https_and_loopback_http_redirect_uris_are_accepted_verbatim(uri: str) -> None:
    check_redirect_uri(uri)
    assert client_metadata_of(_metadata(redirect_uris=[uri])).redirect_uris == (uri,)


@pytest.mark.parametrize("value", [None, [], "https://tpp.example/cb", [42], {"a": 1}])
def test_redirect_uris_is_a_required_non_empty_list_of_strings(value: Any) -> None:
    with pytest.raises(InvalidRedirectUri):
        redirect_uris_of(value)


def test_too_many_redirect_uris_are_refused() -> None:
    uris = [f"https://tpp.example/cb{i}" for i in range(MAX_REDIRECT_URIS + 1)]
    with pytest.raises(InvalidRedirectUri, match="at most"):
        redirect_uris_of(uris)


def test_duplicate_redirect_uris_are_kept_once_in_order() -> None:
    uris = ["https://b.example/cb", "https://a.example/cb", "https://b.example/cb"]
    assert redirect_uris_of(uris) == ("https://b.example/cb", "https://a.example/cb")


# --------------------------------------------------------------------------- client names


@pytest.mark.parametrize("case", REFUSED_CLIENT_NAMES)
def test_the_policy_refuses_the_client_name(case: Refused) -> None:
    with pytest.raises(InvalidClientMetadata, match=case.why):
        client_name_of(case.value)


@pytest.mark.parametrize("case", REFUSED_CLIENT_NAMES)
def test_the_register_api_refuses_the_same_client_name(case: Refused) -> None:
    with pytest.raises(InvalidClientMetadata, match=case.why):
        client_metadata_of(_metadata(client_name=case.value))


@pytest.mark.parametrize(("given", "stored"), ACCEPTED_CLIENT_NAMES)
def test_client_names_are_trimmed_and_nfc_normalised(given: str, stored: str) -> None:
    assert client_name_of(given) == stored
    assert client_metadata_of(_metadata(client_name=given)).client_name == stored


@pytest.mark.parametrize("value", [None, 7, ["name"]])
def test_client_name_is_a_required_string(value: Any) -> None:
    with pytest.raises(InvalidClientMetadata, match="client_name is required"):
        client_name_of(value)


def test_names_differing_by_case_or_spacing_share_a_uniqueness_key() -> None:
    assert name_key("Budget  Insight") == name_key("budget insight") == name_key("BUDGET Insight")
    assert name_key("Budget Insight") != name_key("Budget Insights")
