"""`stetgate clients set-redirect-uris`: the operator replaces a Go-Live client's redirect URIs
(checked like `clients add`, audited, refused for self-registered clients), and a loopback one
then matches any port at /authorize (RFC 8252 §7.3). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from stetgate.cli import main
from stetgate.oauth.clients import ORIGIN_REGISTER, get_client, insert_client
from stetgate.store.audit_events import CLIENT_REDIRECT_URIS_SET
from tests.support.bank import RunningBank
from tests.support.client_metadata_cases import REFUSED_REDIRECT_URIS, Refused
from tests.support.pki import TestPki
from tests.support.token_side import audit_trail, database_state

pytestmark = pytest.mark.postgres  # the client store's update and the audit trail

ORG = "PSDFR-ACPR-44901"
AUTHORIZE = "/stet/psd2/oauth/authorize"


def _run(pki: TestPki, db_url: str, data_dir: Path, *args: str) -> Result:
    env = {
        "STETGATE_DATABASE_URL": db_url,
        "STETGATE_TRUST_DIR": str(pki.trust_dir),
        "STETGATE_CRL_DIR": str(pki.crl_dir),
    }
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "clients", *args], env=env)


@pytest.fixture
def golive(pki: TestPki, db_url: str, tmp_path: Path) -> str:
    added = _run(
        pki,
        db_url,
        tmp_path,
        *("add", "--org-id", ORG, "--name", "Redirect App"),
        *("--redirect-uri", "https://tpp.example/cb"),
    )
    assert added.exit_code == 0, added.output
    return ORG


def _client_uris(db_url: str, client_id: str) -> tuple[str, ...]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            client = get_client(conn, client_id)
            assert client is not None
            return client.redirect_uris
    finally:
        engine.dispose()


def _authorize_status(bank: RunningBank, client_id: str, redirect_uri: str) -> int:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "aisp",
            "state": "s",
        }
    )
    with bank.client() as browser:
        return browser.get(f"{AUTHORIZE}?{query}", follow_redirects=False).status_code


def test_the_list_is_replaced_audited_and_a_loopback_uri_takes_any_port(
    pki: TestPki,
    db_url: str,
    tmp_path: Path,
    golive: str,
    bank_factory: Callable[..., RunningBank],
) -> None:
    result = _run(
        pki,
        db_url,
        tmp_path,
        *("set-redirect-uris", golive, "--redirect-uri", "https://tpp.example/cb"),
        *("--redirect-uri", "https://127.0.0.1/callback"),
    )
    assert result.exit_code == 0, result.output
    assert _client_uris(db_url, golive) == ("https://tpp.example/cb", "https://127.0.0.1/callback")
    bank = bank_factory()
    (event,) = audit_trail(bank.services.engine, CLIENT_REDIRECT_URIS_SET)
    assert event["detail"]["before"] == ["https://tpp.example/cb"]
    # trusted: the bank redirects (to its login page, or with an error to that very URI); an
    # untrusted redirect URI is an error page, never a redirect (RFC 6749 §4.1.2.1)
    assert _authorize_status(bank, golive, "https://127.0.0.1:50123/callback") == 303
    assert _authorize_status(bank, golive, "https://127.0.0.1:50123/other") == 400
    assert _authorize_status(bank, golive, "https://localhost:50123/callback") == 400


@pytest.mark.parametrize("case", REFUSED_REDIRECT_URIS[:6])
def test_a_refused_uri_changes_nothing(
    pki: TestPki, db_url: str, tmp_path: Path, golive: str, case: Refused
) -> None:
    engine = create_engine(db_url)
    try:
        before = database_state(engine)
        result = _run(
            pki, db_url, tmp_path, "set-redirect-uris", golive, "--redirect-uri", case.value
        )
        assert result.exit_code == 1, result.output
        assert "--redirect-uri refused" in result.output and case.why in result.output
        assert database_state(engine) == before
    finally:
        engine.dispose()


def test_unknown_and_self_registered_clients_are_refused(
    pki: TestPki, db_url: str, tmp_path: Path, golive: str
) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            current = get_client(conn, golive)
            assert current is not None
            insert_client(
                conn,
                replace(
                    current,
                    client_id="opaque-1",
                    origin=ORIGIN_REGISTER,
                    name="Other",
                    certificates=(),
                ),
            )
        before = database_state(engine)
    finally:
        engine.dispose()
    unknown = _run(
        pki, db_url, tmp_path, "set-redirect-uris", "nope", "--redirect-uri", "https://a/cb"
    )
    assert unknown.exit_code == 1
    registered = _run(
        pki, db_url, tmp_path, "set-redirect-uris", "opaque-1", "--redirect-uri", "https://a/cb"
    )
    assert registered.exit_code == 1 and "register API" in registered.output
    missing = _run(pki, db_url, tmp_path, "set-redirect-uris", golive)
    assert missing.exit_code == 2
    engine = create_engine(db_url)
    try:
        assert database_state(engine) == before
    finally:
        engine.dispose()
