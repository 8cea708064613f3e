"""Attack matrix, consent-page impersonation through look-alike TPP names (Unicode Technical
Standard #39) on the register API (RFC 7591/7592).

A TPP registering ``client_name`` ``Bаnk App`` (Cyrillic ``а``) beside another organization's
``Bank App`` would be shown under that name on the bank's consent page. The register API
answers 400 ``invalid_client_metadata`` (RFC 7591 §3.2.2) to a name whose UTS #39 skeleton
equals another organization's, to a word mixing look-alike alphabets and to invisible or
bidi-control characters — and stores nothing. The consent page also shows the legal name and
organizationIdentifier from the TPP's certificate (tests/e2e/test_psu_browser.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.security.matrix import unchanged
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.unit.registry.register_client import RegisteringTpp, client_path

pytestmark = pytest.mark.postgres  # the registrations store (client names) on both dialects

ORG_A = "PSDFR-ACPR-76001"
ORG_B = "PSDFR-ACPR-76002"
CYRILLIC_A = "\u0430"


@pytest.fixture(scope="module")
def certs_a(pki: TestPki) -> TppCerts:
    return pki.issue(ORG_A, ("AISP", "CBPII"), "Lookalike TPP A")


@pytest.fixture(scope="module")
def certs_b(pki: TestPki) -> TppCerts:
    return pki.issue(ORG_B, ("AISP",), "Lookalike TPP B")


@pytest.fixture
def victim(shared_bank: RunningBank, certs_a: TppCerts) -> RegisteringTpp:
    return RegisteringTpp(shared_bank, certs_a)


@pytest.fixture
def attacker(shared_bank: RunningBank, certs_b: TppCerts) -> RegisteringTpp:
    return RegisteringTpp(shared_bank, certs_b)


def _name(base: str) -> str:
    """A name unique to the test (the module shares one bank), built of plain letters."""
    suffix = "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])
    return f"{base} {suffix.capitalize()}"


def _refused(tpp: RegisteringTpp, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "invalid_client_metadata"
    assert response.headers["cache-control"] == "no-store"
    return body


def _register(tpp: RegisteringTpp, name: str) -> httpx.Response:
    token = tpp.new_registration_token()
    with unchanged(tpp.bank):
        return tpp.register(tpp.document(client_name=name), bearer=token)


def test_cyrillic_a_inside_another_organizations_latin_name_is_refused(
    victim: RegisteringTpp, attacker: RegisteringTpp
) -> None:
    """The issue's case: ``Bаnk App`` with U+0430 — a word of two alphabets (UTS #39 §5.2)."""
    name = _name("Bank App")
    victim.registered(client_name=name)
    spoof = name.replace("a", CYRILLIC_A, 1)
    assert spoof != name
    body = _refused(attacker, _register(attacker, spoof))
    assert "alphabets" in body["error_description"]


def test_whole_word_spelt_in_cyrillic_look_alikes_is_refused(
    victim: RegisteringTpp, attacker: RegisteringTpp
) -> None:
    """``Рау`` (Cyrillic Er, a, u) is one alphabet per word, but its skeleton is ``Pay``."""
    name = _name("Pay")
    victim.registered(client_name=name)
    spoof = "Рау" + name[3:]
    body = _refused(attacker, _register(attacker, spoof))
    assert "mistaken" in body["error_description"]


def test_digit_zero_for_letter_o_look_alike_is_refused(
    victim: RegisteringTpp, attacker: RegisteringTpp
) -> None:
    name = _name("Orange Budget")
    victim.registered(client_name=name)
    assert (
        "mistaken" in _refused(attacker, _register(attacker, "0" + name[1:]))["error_description"]
    )


def test_capital_i_for_small_l_look_alike_is_refused(
    victim: RegisteringTpp, attacker: RegisteringTpp
) -> None:
    name = _name("Budget lnsight")
    victim.registered(client_name=name)
    response = _register(attacker, name.replace("ln", "In", 1))
    assert "mistaken" in _refused(attacker, response)["error_description"]


def test_fullwidth_letters_look_alike_is_refused(
    victim: RegisteringTpp, attacker: RegisteringTpp
) -> None:
    name = _name("ABC Pay")
    victim.registered(client_name=name)
    fullwidth = "\uff21\uff22\uff23" + name[3:]
    assert "mistaken" in _refused(attacker, _register(attacker, fullwidth))["error_description"]


def test_renaming_into_a_look_alike_of_another_organizations_name_is_refused(
    victim: RegisteringTpp, attacker: RegisteringTpp
) -> None:
    """RFC 7592 §2.2 PUT: the same rule as at registration."""
    name = _name("Orange Pay")
    victim.registered(client_name=name)
    mine = attacker.registered()
    with unchanged(attacker.bank):
        response = attacker.send(
            "PUT",
            client_path(mine["client_id"]),
            bearer=mine["registration_access_token"],
            document=attacker.document(client_name="0" + name[1:]),
        )
    assert "mistaken" in _refused(attacker, response)["error_description"]


def test_word_mixing_latin_and_cyrillic_letters_is_refused(attacker: RegisteringTpp) -> None:
    """UTS #39 §5.2: refused even before anyone holds the Latin spelling."""
    body = _refused(attacker, _register(attacker, _name(f"P{CYRILLIC_A}ypal")))
    assert "alphabets" in body["error_description"]


def test_right_to_left_override_in_the_name_is_refused(attacker: RegisteringTpp) -> None:
    """A bidi override would make ``ppA knaB`` display as ``Bank App``."""
    _refused(attacker, _register(attacker, "\u202eppA knaB " + _name("x")))


def test_zero_width_character_in_the_name_is_refused(attacker: RegisteringTpp) -> None:
    _refused(attacker, _register(attacker, _name("Bank\u200bApp")))


def test_an_organization_may_register_a_look_alike_of_its_own_name(
    victim: RegisteringTpp,
) -> None:
    """Not an impersonation: the same organizationIdentifier stands behind both."""
    name = _name("Budget lnsight")
    victim.registered(client_name=name)
    response = victim.register(victim.document(client_name=name.replace("ln", "In", 1)))
    assert response.status_code == 201, response.text
