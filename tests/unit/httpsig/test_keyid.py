"""keyId forms STET banks use (docs/decisions.md#http-signatures); resolution itself is the
registry's job."""

from __future__ import annotations

import pytest

from stetgate.httpsig import KeyIdForm, UnknownKey, classify_key_id, parse_sn_ca_key_id


def test_serial_and_issuer_key_id_keeps_commas_of_the_issuer_dn() -> None:
    key_id = "SN=01F4A2,CA=CN=Test QTSP CA,2.5.4.97=NTRFR-123,O=Test QTSP,C=FR"

    assert parse_sn_ca_key_id(key_id) == (
        0x01F4A2,
        "CN=Test QTSP CA,2.5.4.97=NTRFR-123,O=Test QTSP,C=FR",
    )


def test_serial_and_issuer_labels_are_case_insensitive_and_a_space_may_follow_the_comma() -> None:
    assert parse_sn_ca_key_id("sn=ff, ca= C=FR, O=QTSP ") == (255, "C=FR, O=QTSP")


def test_issuer_dn_escapes_are_kept_verbatim() -> None:
    assert parse_sn_ca_key_id(r"SN=1,CA=CN=Foo\, Inc,C=FR")[1] == r"CN=Foo\, Inc,C=FR"


@pytest.mark.parametrize(
    "key_id",
    [
        pytest.param("SN=,CA=CN=x", id="empty-serial"),
        pytest.param("SN=12G4,CA=CN=x", id="serial-not-hex"),
        pytest.param("SN=0x12,CA=CN=x", id="serial-0x-prefix"),
        pytest.param("SN=-12,CA=CN=x", id="serial-negative"),
        pytest.param("SN=" + "f" * 65 + ",CA=CN=x", id="serial-too-long"),
        pytest.param("SN=12", id="no-issuer"),
        pytest.param("SN=12,CA=", id="empty-issuer"),
        pytest.param("SN=12,CA=   ", id="blank-issuer"),
        pytest.param("SN=12,CN=x", id="issuer-label-missing"),
        pytest.param("CA=CN=x,SN=12", id="labels-swapped"),
        pytest.param("https://tpp.example/qsealc.pem", id="url"),
        pytest.param("kid-1", id="kid"),
    ],
)
def test_malformed_serial_and_issuer_key_id_is_an_unknown_key(key_id: str) -> None:
    with pytest.raises(UnknownKey):
        parse_sn_ca_key_id(key_id)


@pytest.mark.parametrize(
    ("key_id", "form"),
    [
        ("SN=12,CA=CN=x", KeyIdForm.SERIAL_AND_ISSUER),
        ("sn=12,ca=CN=x", KeyIdForm.SERIAL_AND_ISSUER),
        ("https://tpp.example/certs/qsealc_3f2a.pem", KeyIdForm.CERTIFICATE_URL),
        ("HTTPS://TPP.EXAMPLE/q.pem", KeyIdForm.CERTIFICATE_URL),
        ("http://tpp.example/q.pem", KeyIdForm.CERTIFICATE_URL),
        ("2b6a1c5e-qsealc", KeyIdForm.REGISTRATION_KID),
        ("ftp://tpp.example/q.pem", KeyIdForm.REGISTRATION_KID),
        ("", KeyIdForm.REGISTRATION_KID),
    ],
)
def test_key_id_form_is_classified_by_its_prefix(key_id: str, form: KeyIdForm) -> None:
    assert classify_key_id(key_id) is form
