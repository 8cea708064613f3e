"""One case table for the client metadata policy (`stetgate.registry.client_metadata_policy`),
run against the policy functions, the register API's metadata reader and ``stetgate clients
add``, so the three cannot drift apart.

Each refused case carries a fragment of the description the refusal must give.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Refused:
    value: str
    why: str


REFUSED_REDIRECT_URIS = [
    pytest.param(Refused("http://localhost/callback", "must use https"), id="http-localhost"),
    pytest.param(Refused("http://tpp.example/callback", "must use https"), id="http-not-loopback"),
    pytest.param(Refused("ftp://tpp.example/cb", "must use https"), id="ftp"),
    pytest.param(Refused("HTTPS://tpp.example/cb", "must use https"), id="upper-case-scheme"),
    pytest.param(Refused("com.example.app:/cb", "needs a host"), id="private-use-scheme"),
    pytest.param(Refused("https://*.example.com/cb", "wildcards"), id="wildcard-host"),
    pytest.param(Refused("https:\\\\tpp.example\\cb", "forbidden characters"), id="backslashes"),
    pytest.param(Refused("https://tpp.example/a\\b", "forbidden characters"), id="backslash"),
    pytest.param(Refused("https://tpp.example:0/cb", "port other than 0"), id="port-0"),
    pytest.param(Refused("https://tpp.example:99999/cb", "not a valid URI"), id="port-99999"),
    pytest.param(Refused("https://tpp.example/" + "a" * 2980, "too long"), id="3000-characters"),
    pytest.param(Refused("https://tpp.example/c b", "forbidden characters"), id="space"),
    pytest.param(Refused("https://tpp.example/\x00", "forbidden characters"), id="nul"),
    pytest.param(Refused("https://tpp.example/\x7f", "forbidden characters"), id="del"),
    pytest.param(Refused("https://b\u00e4nk.example/cb", "forbidden characters"), id="non-ascii"),
    pytest.param(Refused("https://tpp.example/\u202ecb", "forbidden characters"), id="bidi"),
    pytest.param(Refused("https://tpp.example/cb#frag", "fragment"), id="fragment"),
    pytest.param(Refused("https://tpp.example/cb#", "fragment"), id="empty-fragment"),
    pytest.param(Refused("https://user:pw@tpp.example/cb", "user information"), id="userinfo"),
    pytest.param(Refused("tpp.example/callback", "needs a host"), id="no-scheme"),
    pytest.param(Refused("/callback", "needs a host"), id="relative"),
    pytest.param(Refused("https:///cb", "needs a host"), id="no-host"),
    pytest.param(Refused("", "non-empty string"), id="empty"),
]

ACCEPTED_REDIRECT_URIS = [
    "https://tpp.example/callback",
    "https://tpp.example:8443/cb?tenant=7",
    "https://[2001:db8::1]/cb",
    "http://127.0.0.1:53124/callback",
    "http://[::1]/callback",
]

REFUSED_CLIENT_NAMES = [
    pytest.param(Refused("", "client_name is required"), id="empty"),
    pytest.param(Refused("   ", "client_name is required"), id="blank"),
    pytest.param(Refused("Bank\u202eknaB", "control or invisible"), id="bidi-override"),
    pytest.param(Refused("\u2066Budget\u2069", "control or invisible"), id="bidi-isolate"),
    pytest.param(Refused("Budget\u200bInsight", "control or invisible"), id="zero-width-space"),
    pytest.param(Refused("Budget\nInsight", "control or invisible"), id="newline"),
    pytest.param(Refused("Budget\tInsight", "control or invisible"), id="tab"),
    pytest.param(Refused("Budget\x07", "control or invisible"), id="bell"),
    pytest.param(Refused("Budget\u2028Insight", "control or invisible"), id="line-separator"),
    pytest.param(Refused("x" * 201, "longer than 200"), id="201-characters"),
    pytest.param(Refused("P\u0430ypal Ltd", "different alphabets"), id="mixed-latin-cyrillic"),
    pytest.param(Refused("Bank Ph\u03bfne", "different alphabets"), id="mixed-latin-greek"),
]

_UNICODE_NAME = "\u00c9pargne \u2014 \u65e5\u672c"
ACCEPTED_CLIENT_NAMES = [
    pytest.param("  Cafe\u0301 Budget ", "Caf\u00e9 Budget", id="trimmed-and-nfc"),
    pytest.param("Budget Insight", "Budget Insight", id="plain"),
    pytest.param(_UNICODE_NAME, _UNICODE_NAME, id="unicode"),
]
"""(given, stored)."""
