"""Bank profiles: the built-ins say what the server and BPCE's documentation say, and a bad
file is refused with its file, field and reason (docs/tpp-guide.md#bank-profiles)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stetgate.httpsig import KeyIdForm, required_signed_headers
from stetgate.oauth.introspect import INTROSPECT_PATH
from stetgate.oauth.metadata import (
    AUTHORIZE_PATH,
    METADATA_PATH,
    REGISTRATION_PATH,
    authorization_server_metadata,
)
from stetgate.oauth.revoke import REVOKE_PATH
from stetgate.oauth.token_endpoint import TOKEN_PATH
from stetgate.psd2.representations import BASE_PATH
from stetgate.settings import Settings
from stetgate.tpp.bank_profile import (
    UNKNOWN,
    BankProfile,
    ProfileError,
    builtin_profile,
    builtin_profile_names,
    load_profile,
    parse_profile,
    resolve_profile,
)
from stetgate.tpp.flows import signed_header_names

DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}

MINIMAL = """
name = "minimal"
[endpoints]
authorize = "/authorize"
token = "/token"
api_base = "/psd2"
"""


# --- the built-ins -----------------------------------------------------------------------------
def test_the_built_in_profiles_are_sandbox_and_bpce() -> None:
    assert builtin_profile_names() == ["bpce", "sandbox"]
    for name in builtin_profile_names():
        assert builtin_profile(name).name == name


def test_the_sandbox_profile_has_the_server_s_endpoints() -> None:
    endpoints = builtin_profile("sandbox").endpoints
    assert endpoints.base_url == f"https://localhost:{DEFAULTS['port']}"
    assert endpoints.issuer == "base_url"  # setting issuer defaults to https://HOST:PORT
    assert (endpoints.authorize, endpoints.token, endpoints.revoke) == (
        AUTHORIZE_PATH,
        TOKEN_PATH,
        REVOKE_PATH,
    )
    assert endpoints.introspection == INTROSPECT_PATH
    assert endpoints.api_base == BASE_PATH
    assert builtin_profile("sandbox").discovery.metadata == METADATA_PATH


def test_the_sandbox_profile_has_the_default_settings_lifetimes_and_limits() -> None:
    profile = builtin_profile("sandbox")
    assert profile.tokens.access_token_seconds == DEFAULTS["access_token_ttl_seconds"]
    assert profile.sca.validity_days == DEFAULTS["sca_validity_days"]
    assert profile.tokens.refresh_token_seconds == DEFAULTS["sca_validity_days"] * 86400
    assert profile.tokens.refresh_rotation == (
        "rotates" if DEFAULTS["rotate_refresh_tokens"] else "same"
    )
    assert profile.unattended.limit_per_account_per_day == DEFAULTS["unattended_limit"]
    assert profile.unattended.window == DEFAULTS["unattended_window"]
    assert profile.registration.supported is True
    assert profile.registration.path == REGISTRATION_PATH
    assert profile.registration.client_id == DEFAULTS["registration_client_id"]


def test_the_sandbox_profile_signs_what_the_server_requires_and_offers_pkce() -> None:
    profile = builtin_profile("sandbox")
    assert profile.signature.key_id_forms == list(KeyIdForm)  # all three are resolved
    for method in ("GET", "POST", "PUT", "DELETE"):
        body = b"{}" if method in ("POST", "PUT") else b""
        headers = {"X-Request-ID": "r", "Date": "d", "PSU-IP-Address": "192.0.2.1"}
        if body:
            headers["Digest"] = "SHA-256=x"
        required = set(required_signed_headers(headers, body))
        assert required <= set(signed_header_names(profile, method, headers, body)), method
    metadata = authorization_server_metadata("https://b", Settings(), ["authorization_code"])
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert profile.pkce == "supported" and profile.pkce_by_default


def test_the_bpce_profile_marks_what_the_documentation_does_not_say_unknown() -> None:
    profile = builtin_profile("bpce")
    unknowns = {
        "endpoints.base_url": profile.endpoints.base_url,
        "endpoints.issuer": profile.endpoints.issuer,
        "endpoints.introspection": profile.endpoints.introspection,
        "discovery.metadata": profile.discovery.metadata,
        "signature.signed_headers": profile.signature.signed_headers,
        "pkce": profile.pkce,
        "registration.client_id": profile.registration.client_id,
    }
    assert unknowns == dict.fromkeys(unknowns, UNKNOWN)
    assert not profile.pkce_by_default


def test_the_bpce_profile_carries_what_the_documentation_says() -> None:
    profile = builtin_profile("bpce")
    assert profile.endpoints.token == "/stet/psd2/oauth/token"
    assert profile.signature.key_id_forms == [KeyIdForm.REGISTRATION_KID]
    assert profile.tokens.refresh_rotation == "same"
    assert profile.sca.validity_days == 90
    assert profile.unattended.limit_per_account_per_day == 4
    assert profile.unattended.window == "calendar_day"
    assert profile.registration.path == "/stet/setting/v1/register"


@pytest.mark.parametrize("name", ["sandbox", "bpce"])
def test_a_profile_printed_as_toml_reads_back_the_same(name: str) -> None:
    profile = builtin_profile(name)
    assert parse_profile(profile.to_toml(), "toml", "printed") == profile


def test_a_json_profile_loads_like_a_toml_one(tmp_path: Path) -> None:
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(builtin_profile("sandbox").model_dump(mode="json")))
    assert load_profile(path) == builtin_profile("sandbox")


def test_fields_left_out_are_explicitly_unknown(tmp_path: Path) -> None:
    path = tmp_path / "minimal.toml"
    path.write_text(MINIMAL)
    profile = load_profile(path)
    assert profile.pkce == UNKNOWN and not profile.pkce_by_default
    assert profile.tokens.access_token_seconds == UNKNOWN
    assert profile.registration.supported == UNKNOWN
    assert profile.endpoints.revoke == UNKNOWN


@pytest.mark.parametrize(
    "pkce, by_default",
    [("required", True), ("supported", True), ("not_supported", False), ("unknown", False)],
)
def test_pkce_is_sent_by_default_only_where_the_bank_supports_it(
    pkce: str, by_default: bool
) -> None:
    profile = builtin_profile("sandbox").model_copy(update={"pkce": pkce})
    assert profile.pkce_by_default is by_default


def test_resolve_takes_a_built_in_name_or_a_file(tmp_path: Path) -> None:
    assert resolve_profile("bpce").name == "bpce"
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL)
    assert resolve_profile(str(path)).name == "minimal"
    with pytest.raises(ProfileError, match="neither a built-in profile"):
        resolve_profile(str(tmp_path / "absent.toml"))
    with pytest.raises(ProfileError, match="no built-in profile"):
        builtin_profile("credit-agricole")


# --- refused files -------------------------------------------------------------------------------
def _with(change: str) -> str:
    """MINIMAL with the tables of ``change`` added after its own."""
    return MINIMAL + "\n" + change


def _top(line: str) -> str:
    """MINIMAL with a top-level ``line`` (before its tables)."""
    return MINIMAL.replace('name = "minimal"', f'name = "minimal"\n{line}')


def _endpoints(**fields: str) -> str:
    values = {"authorize": "/authorize", "token": "/token", "api_base": "/psd2", **fields}
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    return f'name = "x"\n[endpoints]\n{body}\n'


def _signing(**lists: list[str] | None) -> str:
    """MINIMAL with a ``[signature.signed_headers]`` table: GET=…, POST=…, PUT=…, DELETE=…;
    the methods not given sign ``(request-target)`` only, and ``None`` leaves one out."""
    table: dict[str, list[str] | None] = {
        m: ["(request-target)"] for m in ("GET", "POST", "PUT", "DELETE")
    }
    table.update(lists)
    rows = "\n".join(f"{m} = {json.dumps(v)}" for m, v in table.items() if v is not None)
    return _with(f"[signature.signed_headers]\n{rows}")


INVALID: list[tuple[str, str, str, str]] = [
    # (case, file text, field, words of the reason)
    ("not TOML", "name = ", "(file)", "not valid TOML"),
    ("missing name", MINIMAL.replace('name = "minimal"', ""), "name", "required"),
    ("missing endpoints", 'name = "x"\n', "endpoints", "required"),
    (
        "missing token endpoint",
        MINIMAL.replace('token = "/token"', ""),
        "endpoints.token",
        "required",
    ),
    ("typo at the top", _top('pcke = "supported"'), "pcke", "unknown field"),
    (
        "typo in a table",
        _with('[tokens]\nrefresh_rotaion = "same"'),
        "tokens.refresh_rotaion",
        "unknown field",
    ),
    ("upper-case name", MINIMAL.replace('"minimal"', '"BPCE"'), "name", "lower-case"),
    (
        "relative path",
        _endpoints(authorize="oauth/authorize"),
        "endpoints.authorize",
        "path starting with '/'",
    ),
    ("query in an endpoint", _endpoints(token="/token?x=1"), "endpoints.token", "no query"),
    (
        "fragment in an endpoint",
        _endpoints(token="/token#x"),
        "endpoints.token",
        "no query, fragment",
    ),
    (
        "plain http endpoint",
        _endpoints(token="http://bank.example/token"),
        "endpoints.token",
        "https://",
    ),
    ("URL without host", _endpoints(token="https:///token"), "endpoints.token", "no valid host"),
    (
        "plain http base URL",
        _endpoints(base_url="http://bank.example"),
        "endpoints.base_url",
        "https://",
    ),
    (
        "issuer not a URL",
        _endpoints(issuer="bank"),
        "endpoints.issuer",
        "'base_url', an https:// URL",
    ),
    ("revoke neither path nor word", _endpoints(revoke="nope"), "endpoints.revoke", "'none'"),
    ("PKCE as yes", _top('pkce = "yes"'), "pkce", "'required', 'supported'"),
    (
        "rotation word",
        _with('[tokens]\nrefresh_rotation = "sometimes"'),
        "tokens.refresh_rotation",
        "'rotates'",
    ),
    (
        "zero lifetime",
        _with("[tokens]\naccess_token_seconds = 0"),
        "tokens.access_token_seconds",
        "between 1",
    ),
    (
        "lifetime as text",
        _with('[tokens]\naccess_token_seconds = "3600"'),
        "tokens.access_token_seconds",
        "whole number",
    ),
    (
        "lifetime as boolean",
        _with("[tokens]\nrefresh_token_seconds = true"),
        "tokens.refresh_token_seconds",
        "whole number",
    ),
    (
        "SCA beyond the RTS",
        _with("[sca]\nvalidity_days = 365"),
        "sca.validity_days",
        "between 1 and 180",
    ),
    (
        "unattended window",
        _with('[unattended]\nwindow = "weekly"'),
        "unattended.window",
        "'calendar_day'",
    ),
    (
        "unattended limit 0",
        _with("[unattended]\nlimit_per_account_per_day = 0"),
        "unattended.limit_per_account_per_day",
        "between 1",
    ),
    (
        "no keyId form",
        _with("[signature]\nkey_id_forms = []"),
        "signature.key_id_forms",
        "at least one",
    ),
    (
        "unknown keyId form",
        _with('[signature]\nkey_id_forms = ["thumbprint"]'),
        "signature.key_id_forms",
        "the forms are 'serial_and_issuer'",
    ),
    (
        "keyId form twice",
        _with('[signature]\nkey_id_forms = ["certificate_url", "certificate_url"]'),
        "signature.key_id_forms",
        "listed twice",
    ),
    (
        "signature without request-target",
        _signing(GET=["x-request-id"]),
        "signature.signed_headers",
        "GET must sign (request-target)",
    ),
    (
        "digest on GET",
        _signing(GET=["(request-target)", "digest"]),
        "signature.signed_headers",
        "no digest to sign",
    ),
    (
        "upper-case header",
        _signing(GET=["(request-target)", "X-Request-ID"]),
        "signature.signed_headers",
        "not a lower-case header name",
    ),
    (
        "header twice",
        _signing(GET=["(request-target)", "date", "date"]),
        "signature.signed_headers",
        "lists a header twice",
    ),
    (
        "a method missing",
        _signing(DELETE=None),
        "signature.signed_headers",
        "no list for DELETE",
    ),
    (
        "PATCH",
        _with('[signature.signed_headers]\nPATCH = ["(request-target)"]'),
        "signature.signed_headers",
        "'PATCH' is not one of GET",
    ),
    (
        "signed headers as text",
        _with('[signature]\nsigned_headers = "all"'),
        "signature.signed_headers",
        "a table of header-name lists",
    ),
    (
        "register API without path",
        _with("[registration]\nsupported = true"),
        "registration",
        "needs the register API's path",
    ),
    (
        "register path yet unsupported",
        _with('[registration]\nsupported = false\npath = "/register"'),
        "registration",
        "a path is given",
    ),
    (
        "register support as maybe",
        _with('[registration]\nsupported = "maybe"'),
        "registration.supported",
        "true, false or 'unknown'",
    ),
    (
        "registration client_id empty",
        _with('[registration]\nclient_id = ""'),
        "registration.client_id",
        "registration client_id",
    ),
    ("another STET version", _top('stet_version = "1.4.1"'), "stet_version", "'1.4.2'"),
]


@pytest.mark.parametrize(
    "text, field, why", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_an_invalid_profile_names_its_file_field_and_reason(
    tmp_path: Path, text: str, field: str, why: str
) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    problems = dict(caught.value.problems)
    assert field in problems, caught.value
    assert why in problems[field]
    assert str(caught.value).startswith(f"{path}: ")


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(_top('pkce = "yes"') + "[tokens]\naccess_token_seconds = -1\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert [field for field, _ in caught.value.problems] == ["pkce", "tokens.access_token_seconds"]
    assert len(str(caught.value).splitlines()) == 2


@pytest.mark.parametrize(
    "name, content, why",
    [
        ("bank.yaml", b"name: x", "a .toml or .json file"),
        ("bank.json", b"[1, 2]", "must be a table"),
        ("bank.json", b"{oops", "not valid JSON"),
        ("bank.toml", b'name = "\xff"', "cannot be read"),
    ],
)
def test_a_file_that_is_not_a_profile_is_refused(
    tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ProfileError, match=why) as caught:
        load_profile(path)
    assert caught.value.problems[0][0] == "(file)"


def test_an_unreadable_path_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path / "absent.toml")


def test_a_mapping_is_validated_like_a_file() -> None:
    data: dict[str, Any] = json.loads(
        json.dumps(builtin_profile("sandbox").model_dump(mode="json"))
    )
    data["tokens"]["access_token_seconds"] = "an hour"
    with pytest.raises(ProfileError, match=r"tokens\.access_token_seconds"):
        BankProfile.from_mapping(data, "mine")
