"""`stetgate clients …` (Go-Live registration) against real certificates and both databases,
and its effect on a running bank's token endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select

from stetgate.cli import main
from stetgate.oauth.clients import get_client
from stetgate.store.audit_events import (
    CLIENT_ADDED,
    CLIENT_CERTIFICATE_ADDED,
    CLIENT_CERTIFICATE_REMOVED,
    CLIENT_RESUMED,
    CLIENT_SUSPENDED,
)
from stetgate.store.schema import grants
from tests.support.bank import RunningBank
from tests.support.client_metadata_cases import (
    ACCEPTED_CLIENT_NAMES,
    ACCEPTED_REDIRECT_URIS,
    REFUSED_CLIENT_NAMES,
    REFUSED_REDIRECT_URIS,
    Refused,
)
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import (
    CALLBACK,
    TOKEN,
    audit_trail,
    database_state,
    exchange_form,
    new_code,
    refresh_form,
)

ORG = "PSDFR-ACPR-44001"


def _run(pki: TestPki, db_url: str, data_dir: Path, *args: str) -> Result:
    env = {
        "STETGATE_DATABASE_URL": db_url,
        "STETGATE_TRUST_DIR": str(pki.trust_dir),
        "STETGATE_CRL_DIR": str(pki.crl_dir),
    }
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "clients", *args], env=env)


def _add(pki: TestPki, db_url: str, data_dir: Path, tpp: TppCerts, *extra: str) -> Result:
    return _run(
        pki,
        db_url,
        data_dir,
        "add",
        "--org-id",
        tpp.org_id,
        "--name",
        f"App {tpp.org_id}",
        "--redirect-uri",
        CALLBACK,
        *extra,
    )


def _state(db_url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(db_url)
    try:
        return database_state(engine)
    finally:
        engine.dispose()


def _everything(db_url: str) -> tuple[object, ...]:
    """Every table, the audit trail included: a refused ``clients add`` writes nothing."""
    engine = create_engine(db_url)
    try:
        return database_state(engine), audit_trail(engine)
    finally:
        engine.dispose()


def _add_client(pki: TestPki, db_url: str, data_dir: Path, name: str, *uris: str) -> Result:
    redirect_uris = [arg for uri in uris for arg in ("--redirect-uri", uri)]
    return _run(pki, db_url, data_dir, "add", "--org-id", ORG, "--name", name, *redirect_uris)


def test_add_stores_a_golive_client_with_its_certificates(
    pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    result = _add(
        pki,
        db_url,
        tmp_path,
        tpp,
        "--redirect-uri",
        "http://127.0.0.1:8080/cb",
        "--qwac",
        str(tpp.qwac_pem),
        "--qsealc",
        str(tpp.qsealc_pem),
        "--require-pkce",
    )
    assert result.exit_code == 0, result.output
    assert f"client_id={ORG}" in result.output
    engine = create_engine(db_url)
    with engine.connect() as conn:
        client = get_client(conn, ORG)
    added = audit_trail(engine, CLIENT_ADDED)
    engine.dispose()
    assert client is not None
    assert (client.client_id, client.org_id, client.origin, client.status) == (
        ORG,
        ORG,
        "golive",
        "active",
    )
    assert client.redirect_uris == (CALLBACK, "http://127.0.0.1:8080/cb")
    assert client.require_pkce is True
    assert sorted(c.kind for c in client.certificates) == ["qsealc", "qwac"]
    assert [e["client_id"] for e in added] == [ORG]


def test_add_without_certificates_is_allowed(pki: TestPki, db_url: str, tmp_path: Path) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    assert _add(pki, db_url, tmp_path, tpp).exit_code == 0


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ("other_org", "does not match --org-id"),
        ("revoked", "certificate_revoked"),
        ("expired", "certificate_expired"),
        ("foreign", "unknown_issuer"),
        ("qsealc_as_qwac", "wrong_certificate_type"),
        ("not_a_certificate", "QWAC"),
    ],
)
def test_add_refuses_bad_certificates(
    pki: TestPki, db_url: str, tmp_path: Path, certificate: str, message: str
) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    if certificate == "other_org":
        path = pki.issue("PSDFR-ACPR-44002", ("AISP",)).qwac_pem
    elif certificate == "revoked":
        revoked = pki.issue(ORG, ("AISP",), fresh=True)
        pki.revoke(revoked.qwac_pem)
        path = revoked.qwac_pem
    elif certificate == "expired":
        start = datetime.now(UTC) - timedelta(days=400)
        path = pki.issue(
            ORG, ("AISP",), not_before=start, not_after=start + timedelta(days=10)
        ).qwac_pem
    elif certificate == "foreign":
        path = pki.issue(ORG, ("AISP",), foreign=True).qwac_pem
    elif certificate == "qsealc_as_qwac":
        path = tpp.qsealc_pem
    else:
        path = tmp_path / "junk.pem"
        path.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    before = _state(db_url)
    result = _add(pki, db_url, tmp_path, tpp, "--qwac", str(path))
    assert result.exit_code != 0
    assert message in result.output
    assert _state(db_url) == before


def test_add_refuses_a_malformed_organization_identifier(
    pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    before = _state(db_url)
    result = _run(
        pki,
        db_url,
        tmp_path,
        "add",
        "--org-id",
        "ACME-1",
        "--name",
        "x",
        "--redirect-uri",
        CALLBACK,
    )
    assert result.exit_code != 0 and "ETSI TS 119 495" in result.output
    assert _state(db_url) == before


def test_add_refuses_a_duplicate(pki: TestPki, db_url: str, tmp_path: Path) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    assert _add(pki, db_url, tmp_path, tpp).exit_code == 0
    before = _state(db_url)
    result = _add(pki, db_url, tmp_path, tpp)
    assert result.exit_code != 0 and "exists" in result.output
    assert _state(db_url) == before


def test_add_refuses_a_bad_redirect_uri(pki: TestPki, db_url: str, tmp_path: Path) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    before = _state(db_url)
    result = _add(pki, db_url, tmp_path, tpp, "--redirect-uri", "http://tpp.example/cb")
    assert result.exit_code != 0 and "RFC 8252" in result.output
    assert _state(db_url) == before


def test_list_shows_clients(pki: TestPki, db_url: str, tmp_path: Path) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    assert _run(pki, db_url, tmp_path, "list").output.strip() == "no clients"
    _add(pki, db_url, tmp_path, tpp, "--qwac", str(tpp.qwac_pem))
    text = _run(pki, db_url, tmp_path, "list")
    assert text.exit_code == 0 and ORG in text.output and CALLBACK in text.output
    rows = json.loads(_run(pki, db_url, tmp_path, "list", "--json").output)
    assert rows[0]["client_id"] == ORG and rows[0]["active_token_pairs"] == 0
    assert rows[0]["certificates"][0]["kind"] == "qwac"


def test_unknown_client_cannot_be_suspended_or_removed(
    pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    for command in ("suspend", "resume", "remove"):
        result = _run(pki, db_url, tmp_path, command, "PSDFR-ACPR-44999")
        assert result.exit_code != 0 and "no client" in result.output


def test_unmigrated_database_is_reported(pki: TestPki, tmp_path: Path) -> None:
    result = _run(pki, f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, "list")
    assert result.exit_code != 0 and "stetgate db upgrade" in result.output


def test_suspend_blocks_tokens_and_resume_restores_them(
    bank: RunningBank, pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    assert _add(pki, db_url, tmp_path, tpp, "--qwac", str(tpp.qwac_pem)).exit_code == 0
    with bank.services.engine.connect() as conn:
        client = get_client(conn, ORG)
    assert client is not None
    with bank.client(tpp) as http:
        code = new_code(bank.services.engine, client, bank.clock.now())
        pair = http.post(TOKEN, data=exchange_form(client, code)).json()
        assert _run(pki, db_url, tmp_path, "suspend", ORG).exit_code == 0
        refused = http.post(TOKEN, data=refresh_form(client, pair["refresh_token"]))
        assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
        code = new_code(bank.services.engine, client, bank.clock.now())
        refused = http.post(TOKEN, data=exchange_form(client, code))
        assert refused.json()["error"] == "unauthorized_client"
        assert _run(pki, db_url, tmp_path, "resume", ORG).exit_code == 0
        assert http.post(TOKEN, data=refresh_form(client, pair["refresh_token"])).status_code == 200
    events = [e["event"] for e in audit_trail(bank.services.engine)]
    assert CLIENT_SUSPENDED in events and CLIENT_RESUMED in events


def test_remove_revokes_every_pair(
    bank: RunningBank, pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    tpp = pki.issue(ORG, ("AISP", "CBPII"))
    assert _add(pki, db_url, tmp_path, tpp).exit_code == 0
    with bank.services.engine.connect() as conn:
        client = get_client(conn, ORG)
    assert client is not None
    with bank.client(tpp) as http:
        pairs = [
            http.post(
                TOKEN,
                data=exchange_form(
                    client, new_code(bank.services.engine, client, bank.clock.now(), scope=scope)
                ),
            ).json()
            for scope in ("aisp", "cbpii")
        ]
        result = _run(pki, db_url, tmp_path, "remove", ORG)
        assert result.exit_code == 0 and "2 token pair(s) revoked" in result.output
        refused = http.post(TOKEN, data=refresh_form(client, pairs[0]["refresh_token"]))
    assert refused.json()["error"] == "invalid_client"
    with bank.services.engine.connect() as conn:
        reasons = conn.execute(select(grants.c.revoked_reason)).scalars().all()
        assert get_client(conn, ORG) is None
    assert reasons == ["client_removed", "client_removed"]


# --------------------------------------------------------------------------- the policy table
# The cases of tests/support/client_metadata_cases.py, which also run against the policy and
# the register API's metadata reader (tests/unit/registry/test_client_metadata_policy.py).


@pytest.mark.parametrize("case", REFUSED_REDIRECT_URIS)
def test_add_refuses_the_redirect_uris_the_policy_refuses(
    pki: TestPki, db_url: str, tmp_path: Path, case: Refused
) -> None:
    before = _everything(db_url)
    result = _add_client(pki, db_url, tmp_path, "Budget Insight", CALLBACK, case.value)
    assert result.exit_code == 1, result.output
    assert "--redirect-uri refused" in result.output and case.why in result.output
    assert _everything(db_url) == before


@pytest.mark.parametrize("case", REFUSED_CLIENT_NAMES)
def test_add_refuses_the_client_names_the_policy_refuses(
    pki: TestPki, db_url: str, tmp_path: Path, case: Refused
) -> None:
    before = _everything(db_url)
    result = _add_client(pki, db_url, tmp_path, case.value, CALLBACK)
    assert result.exit_code == 1, result.output
    assert "--name refused" in result.output and case.why in result.output
    assert _everything(db_url) == before


@pytest.mark.parametrize("uri", ACCEPTED_REDIRECT_URIS)
def test_add_stores_the_redirect_uris_the_policy_accepts_verbatim(
    pki: TestPki, db_url: str, tmp_path: Path, uri: str
) -> None:
    result = _add_client(pki, db_url, tmp_path, "Budget Insight", uri, uri)
    assert result.exit_code == 0, result.output
    engine = create_engine(db_url)
    with engine.connect() as conn:
        client = get_client(conn, ORG)
    engine.dispose()
    assert client is not None and client.redirect_uris == (uri,)


@pytest.mark.parametrize(("given", "stored"), ACCEPTED_CLIENT_NAMES)
def test_add_stores_the_client_name_as_the_policy_normalises_it(
    pki: TestPki, db_url: str, tmp_path: Path, given: str, stored: str
) -> None:
    result = _add_client(pki, db_url, tmp_path, given, CALLBACK)
    assert result.exit_code == 0, result.output
    engine = create_engine(db_url)
    with engine.connect() as conn:
        client = get_client(conn, ORG)
    engine.dispose()
    assert client is not None and client.name == stored


def test_add_refuses_a_name_that_differs_from_another_only_by_case_or_spacing(
    pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    assert _add_client(pki, db_url, tmp_path, "Budget Insight", CALLBACK).exit_code == 0
    before = _everything(db_url)
    result = _run(
        pki,
        db_url,
        tmp_path,
        "add",
        "--org-id",
        "PSDFR-ACPR-44002",
        "--name",
        "budget  INSIGHT",
        "--redirect-uri",
        CALLBACK,
    )
    assert result.exit_code == 1, result.output
    assert "--name refused" in result.output and "already registered" in result.output
    assert _everything(db_url) == before


# --- certificate renewal of a Go-Live client -------------------------------------------------


def _certificates(db_url: str) -> list[tuple[str, str]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            client = get_client(conn, ORG)
    finally:
        engine.dispose()
    assert client is not None
    return sorted((c.kind, c.thumbprint) for c in client.certificates)


def test_a_renewed_qsealc_is_added_next_to_the_old_then_the_old_removed(
    pki: TestPki, db_url: str, tmp_path: Path
) -> None:
    old = pki.issue(ORG, ("AISP",))
    assert _add(pki, db_url, tmp_path, old, "--qsealc", str(old.qsealc_pem)).exit_code == 0
    renewed = pki.issue(ORG, ("AISP",), fresh=True)
    result = _run(
        pki, db_url, tmp_path, "add-certificate", ORG, "--qsealc", str(renewed.qsealc_pem)
    )
    assert result.exit_code == 0, result.output
    both = _certificates(db_url)
    assert [kind for kind, _ in both] == ["qsealc", "qsealc"]
    (old_thumbprint,) = {t for _, t in both} - {result.output.split()[3]}
    removed = _run(pki, db_url, tmp_path, "remove-certificate", ORG, old_thumbprint)
    assert removed.exit_code == 0, removed.output
    assert _certificates(db_url) == [("qsealc", result.output.split()[3])]
    engine = create_engine(db_url)
    try:
        events = [e["event"] for e in audit_trail(engine)]
    finally:
        engine.dispose()
    assert events[-2:] == [CLIENT_CERTIFICATE_ADDED, CLIENT_CERTIFICATE_REMOVED]


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ("other_org", "does not match"),
        ("revoked", "certificate_revoked"),
        ("foreign", "unknown_issuer"),
        ("qwac_as_qsealc", "wrong_certificate_type"),
        ("same_again", "already has this qsealc"),
    ],
)
def test_add_certificate_refuses_what_add_refuses(
    pki: TestPki, db_url: str, tmp_path: Path, certificate: str, message: str
) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    assert _add(pki, db_url, tmp_path, tpp, "--qsealc", str(tpp.qsealc_pem)).exit_code == 0
    if certificate == "other_org":
        path = pki.issue("PSDFR-ACPR-44002", ("AISP",)).qsealc_pem
    elif certificate == "revoked":
        revoked = pki.issue(ORG, ("AISP",), fresh=True)
        pki.revoke(revoked.qsealc_pem)
        path = revoked.qsealc_pem
    elif certificate == "foreign":
        path = pki.issue(ORG, ("AISP",), foreign=True).qsealc_pem
    elif certificate == "qwac_as_qsealc":
        path = tpp.qwac_pem
    else:
        path = tpp.qsealc_pem
    before = _everything(db_url)
    result = _run(pki, db_url, tmp_path, "add-certificate", ORG, "--qsealc", str(path))
    assert result.exit_code != 0
    assert message in result.output
    assert _everything(db_url) == before


@pytest.mark.parametrize(
    "args",
    [
        ("add-certificate", "PSDFR-ACPR-49999", "--qsealc", "{qsealc}"),
        ("add-certificate", ORG),
        ("add-certificate", ORG, "--qwac", "{qwac}", "--qsealc", "{qsealc}"),
        ("remove-certificate", ORG, "0" * 43),
        ("remove-certificate", "PSDFR-ACPR-49999", "0" * 43),
    ],
)
def test_certificate_commands_refuse_unknown_clients_thumbprints_and_bad_usage(
    pki: TestPki, db_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    tpp = pki.issue(ORG, ("AISP",))
    assert _add(pki, db_url, tmp_path, tpp, "--qsealc", str(tpp.qsealc_pem)).exit_code == 0
    before = _everything(db_url)
    filled = [a.format(qwac=tpp.qwac_pem, qsealc=tpp.qsealc_pem) for a in args]
    result = _run(pki, db_url, tmp_path, *filled)
    assert result.exit_code != 0
    assert _everything(db_url) == before
