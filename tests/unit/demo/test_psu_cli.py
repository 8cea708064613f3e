"""`stetgate psu …` against both databases: add (prints the TOTP secret), list, unblock, totp,
challenges, approve and reject."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from stetgate.cli import main
from stetgate.demo.totp import decode_totp_secret, totp_at
from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.psu.journeys import KIND_AUTHORIZE, STAGE_SCA, advance, load_journey, start_journey
from stetgate.psu.sca import AppMethod
from stetgate.store.audit_events import PSU_ADDED
from stetgate.store.db import make_engine
from stetgate.store.schema import audit_events, psu_journeys, psus

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _run(db_url: str, data_dir: Path, *args: str) -> Result:
    env = {"STETGATE_DATABASE_URL": db_url, "STETGATE_SECRET_KEY": "k" * 40}
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "psu", *args], env=env)


def test_add_prints_the_secret_it_set_and_list_shows_the_psu(db_url: str, tmp_path: Path) -> None:
    added = _run(db_url, tmp_path, "add", "--id", "alice", "--password", "pw", "--name", "Alice")
    assert added.exit_code == 0, added.output
    secret = re.search(r"TOTP secret \(base32\): ([A-Z2-7]+)", added.output).group(1)  # type: ignore[union-attr]
    assert len(decode_totp_secret(secret)) == 20
    given = _run(
        db_url,
        tmp_path,
        "add",
        "--id",
        "bob",
        "--password",
        "pw",
        "--totp-secret",
        SECRET,
        "--no-app",
    )
    assert SECRET in given.output
    listing = _run(db_url, tmp_path, "list")
    assert "alice\tAlice\tsca=totp,app\tactive" in listing.output
    assert "bob\tbob\tsca=totp\tactive" in listing.output
    engine = make_engine(db_url, 1)
    with engine.connect() as conn:
        events = conn.execute(select(audit_events.c.event)).scalars().all()
    engine.dispose()
    assert events.count(PSU_ADDED) == 2 and "pw" not in repr(events)


def test_add_refuses_a_duplicate_or_a_bad_secret(db_url: str, tmp_path: Path) -> None:
    assert _run(db_url, tmp_path, "add", "--id", "alice", "--password", "pw").exit_code == 0
    again = _run(db_url, tmp_path, "add", "--id", "alice", "--password", "pw")
    assert again.exit_code != 0 and "already exists" in again.output
    bad = _run(db_url, tmp_path, "add", "--id", "bob", "--password", "pw", "--totp-secret", "x!")
    assert bad.exit_code != 0 and "base32" in bad.output


def test_totp_prints_the_current_code(db_url: str, tmp_path: Path) -> None:
    _run(db_url, tmp_path, "add", "--id", "alice", "--password", "pw", "--totp-secret", SECRET)
    before = totp_at(decode_totp_secret(SECRET), datetime.now(UTC))
    shown = _run(db_url, tmp_path, "totp", "alice")
    after = totp_at(decode_totp_secret(SECRET), datetime.now(UTC))
    assert shown.exit_code == 0 and shown.output.splitlines()[0] in {before, after}
    assert _run(db_url, tmp_path, "totp", "nobody").exit_code != 0


def test_unblock(db_url: str, tmp_path: Path) -> None:
    _run(db_url, tmp_path, "add", "--id", "alice", "--password", "pw")
    engine = make_engine(db_url, 1)
    with engine.begin() as conn:
        conn.execute(
            psus.update().values(blocked_until=datetime(2099, 1, 1, tzinfo=UTC), failed_attempts=3)
        )
    assert "blocked until 2099" in _run(db_url, tmp_path, "list").output
    assert _run(db_url, tmp_path, "unblock", "alice").exit_code == 0
    with engine.connect() as conn:
        row = conn.execute(select(psus.c.blocked_until, psus.c.failed_attempts)).one()
    engine.dispose()
    assert tuple(row) == (None, 0)
    assert _run(db_url, tmp_path, "unblock", "nobody").exit_code != 0


@pytest.mark.parametrize(("command", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_approve_or_reject_a_pending_challenge(
    db_url: str, tmp_path: Path, command: str, status: str
) -> None:
    _run(db_url, tmp_path, "add", "--id", "alice", "--password", "pw")
    engine = make_engine(db_url, 1)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        session = start_journey(
            conn,
            kind=KIND_AUTHORIZE,
            request=AuthorizationRequest(
                client_id="c",
                redirect_uri="https://t",
                scope="aisp",
                state=None,
                code_challenge=None,
                code_challenge_method=None,
            ),
            lang="fr",
            now=now,
        )
        journey = load_journey(conn, session)
        assert journey is not None
        advance(
            conn,
            journey,
            to_stage=STAGE_SCA,
            now=now,
            psu_id="alice",
            sca_method="app",
            **AppMethod().begin(),
        )
        challenge = conn.execute(select(psu_journeys.c.app_challenge_id)).scalar_one()
    reference = f"{challenge[:5]}-{challenge[5:]}".lower()
    listed = _run(db_url, tmp_path, "challenges", "alice")
    assert f"{challenge[:5]}-{challenge[5:]}" in listed.output
    answered = _run(db_url, tmp_path, command, reference)
    assert answered.exit_code == 0, answered.output
    with engine.connect() as conn:
        assert conn.execute(select(psu_journeys.c.app_challenge_status)).scalar_one() == status
    engine.dispose()
    again = _run(db_url, tmp_path, command, reference)
    assert again.exit_code != 0 and "no pending challenge" in again.output
    assert "no pending challenge" in _run(db_url, tmp_path, "challenges", "alice").output
