"""The grants repository and the one-statement refresh, on SQLite and PostgreSQL.

docs/decisions.md#token-rules: one valid pair per (PSU, organization, role); revoking either token
revokes both; the refresh statement accepts only when every rule holds and changes nothing
otherwise.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from stetgate.clock import FrozenClock
from stetgate.oauth import token_pairs as repo
from stetgate.oauth.refresh_store import RefreshStore
from stetgate.oauth.refreshable import Presenter, RefreshLimits
from stetgate.secrets import new_secret, secret_hash
from stetgate.store.audit_events import TOKEN_REFRESHED
from stetgate.store.db import make_engine
from stetgate.store.schema import audit_events, grants
from tests.unit.oauth.conftest import client, store_client

pytestmark = pytest.mark.postgres  # token pair store, refresh statement

ORG = "PSDFR-ACPR-50001"
OTHER_ORG = "PSDFR-ACPR-50002"
LIMITS = RefreshLimits(sca_validity_days=90)
PRESENTER = Presenter(client_id=ORG, org_id=ORG, role_scopes=frozenset({"aisp", "cbpii"}))


def _pair(engine: Engine, now: datetime, **changes: Any) -> repo.IssuedPair:
    values: dict[str, Any] = {
        "client_id": ORG,
        "org_id": ORG,
        "psu_id": "psu-1",
        "role": "aisp",
        "scope": "aisp extended_transaction_history",
        "sca_at": now,
        "refresh_expires_at": now + timedelta(days=90),
        "access_expires_at": now + timedelta(hours=1),
        "access_cnf": "cnf-1",
        "now": now,
    }
    values.update(changes)
    with engine.begin() as conn:
        return repo.create_pair(conn, **values)


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(grants)).all())


def test_create_pair_supersedes_only_the_same_psu_organization_and_role(
    engine: Engine, clock: FrozenClock
) -> None:
    now = clock.now()
    first = _pair(engine, now)
    cbpii = _pair(engine, now, role="cbpii", scope="cbpii")
    other_psu = _pair(engine, now, psu_id="psu-2")
    other_org = _pair(engine, now, org_id=OTHER_ORG, client_id=OTHER_ORG)
    second = _pair(engine, now)
    assert second.superseded == (first.grant.id,)
    with engine.connect() as conn:
        assert repo.find_active_access(conn, secret_hash(first.access_token), now) is None
        old = repo.get_grant(conn, first.grant.id)
        assert old is not None and old.revoked_reason == repo.SUPERSEDED
        for alive in (second, cbpii, other_psu, other_org):
            assert repo.find_active_access(conn, secret_hash(alive.access_token), now) is not None


def test_tokens_are_stored_only_as_digests(engine: Engine, clock: FrozenClock) -> None:
    pair = _pair(engine, clock.now())
    flat = repr(_rows(engine))
    assert pair.access_token not in flat and pair.refresh_token not in flat
    assert secret_hash(pair.access_token) in flat and secret_hash(pair.refresh_token) in flat


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoking_either_token_revokes_the_pair(
    engine: Engine, clock: FrozenClock, which: str
) -> None:
    pair = _pair(engine, clock.now())
    token = getattr(pair, which)
    with engine.begin() as conn:
        assert (
            repo.revoke_by_token_hash(
                conn,
                secret_hash(token),
                clock.now(),
                reason=repo.REVOKED_BY_CLIENT,
                client_id=OTHER_ORG,
            )
            is None
        )
        revoked = repo.revoke_by_token_hash(
            conn, secret_hash(token), clock.now(), reason=repo.REVOKED_BY_CLIENT, client_id=ORG
        )
        assert revoked is not None and revoked.id == pair.grant.id
        assert (
            repo.revoke_by_token_hash(
                conn, secret_hash(token), clock.now(), reason=repo.REVOKED_BY_CLIENT
            )
            is None
        )
        assert repo.find_active_access(conn, secret_hash(pair.access_token), clock.now()) is None


def test_psu_revokes_only_its_own_pairs(engine: Engine, clock: FrozenClock) -> None:
    pair = _pair(engine, clock.now())
    with engine.begin() as conn:
        assert not repo.revoke_grant(
            conn, pair.grant.id, clock.now(), reason=repo.REVOKED_BY_PSU, psu_id="psu-2"
        )
        assert repo.revoke_grant(
            conn, pair.grant.id, clock.now(), reason=repo.REVOKED_BY_PSU, psu_id="psu-1"
        )
        assert not repo.revoke_grant(conn, pair.grant.id, clock.now(), reason=repo.REVOKED_BY_PSU)


def test_active_grants_of_a_psu(engine: Engine, clock: FrozenClock) -> None:
    start = clock.now()
    old = _pair(
        engine, start, role="cbpii", scope="cbpii", refresh_expires_at=start + timedelta(days=1)
    )
    clock.advance(60)
    newer = _pair(engine, clock.now())
    _pair(engine, clock.now(), psu_id="psu-2")
    with engine.connect() as conn:
        listed = repo.list_active_grants_for_psu(conn, "psu-1", clock.now())
        assert [g.id for g in listed] == [newer.grant.id, old.grant.id]
        assert listed[0].last_used_at == clock.now()
        later = repo.list_active_grants_for_psu(conn, "psu-1", start + timedelta(days=1))
        assert [g.id for g in later] == [newer.grant.id]


def test_revoke_all_for_client(engine: Engine, clock: FrozenClock) -> None:
    _pair(engine, clock.now())
    _pair(engine, clock.now(), psu_id="psu-2")
    kept = _pair(engine, clock.now(), org_id=OTHER_ORG, client_id=OTHER_ORG)
    with engine.begin() as conn:
        assert repo.revoke_all_for_client(conn, ORG, clock.now(), reason=repo.CLIENT_REMOVED) == 2
        assert repo.revoke_all_for_client(conn, ORG, clock.now(), reason=repo.CLIENT_REMOVED) == 0
        assert repo.find_active_access(conn, secret_hash(kept.access_token), clock.now())


def test_access_token_expires(engine: Engine, clock: FrozenClock) -> None:
    pair = _pair(engine, clock.now())
    with engine.connect() as conn:
        digest = secret_hash(pair.access_token)
        assert repo.find_active_access(conn, digest, clock.now() + timedelta(seconds=3599))
        assert repo.find_active_access(conn, digest, clock.now() + timedelta(seconds=3600)) is None


# --- the one-statement refresh ---------------------------------------------------------------


def _refresh(store: RefreshStore, pair: repo.IssuedPair, now: datetime, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "refresh_hash": secret_hash(pair.refresh_token),
        "presenter": PRESENTER,
        "access_hash": secret_hash(new_secret()),
        "access_expires_at": now + timedelta(hours=1),
        "access_cnf": "cnf-2",
        "now": now,
        "request_id": "req-1",
    }
    values.update(changes)
    return store.refresh(store.job(**values))


def test_refresh_statement_replaces_the_access_token_atomically_with_its_audit_row(
    engine: Engine, clock: FrozenClock
) -> None:
    store_client(engine, client(ORG))
    pair = _pair(engine, clock.now())
    clock.advance(120)
    store = RefreshStore(engine, rotate=False, limits=LIMITS)
    new_access = new_secret()
    done = _refresh(store, pair, clock.now(), access_hash=secret_hash(new_access))
    assert done is not None
    assert (done.grant_id, done.psu_id, done.role) == (pair.grant.id, "psu-1", "aisp")
    assert done.access_expires_at == clock.now() + timedelta(hours=1)
    with engine.connect() as conn:
        assert repo.find_active_access(conn, secret_hash(pair.access_token), clock.now()) is None
        grant = repo.find_active_access(conn, secret_hash(new_access), clock.now())
        events = conn.execute(select(audit_events)).mappings().all()
    assert grant is not None
    assert (grant.access_scope, grant.access_cnf, grant.last_used_at) == (
        "aisp",
        "cnf-2",
        clock.now(),
    )
    assert [
        (e["event"], e["client_id"], e["psu_id"], e["request_id"], e["detail"]) for e in events
    ] == [(TOKEN_REFRESHED, ORG, "psu-1", "req-1", {"grant_id": pair.grant.id})]


def test_refreshed_access_token_never_outlives_the_refresh_token(
    engine: Engine, clock: FrozenClock
) -> None:
    store_client(engine, client(ORG))
    pair = _pair(engine, clock.now())
    late = clock.now() + timedelta(days=90) - timedelta(minutes=5)
    done = _refresh(RefreshStore(engine, rotate=False, limits=LIMITS), pair, late)
    assert done is not None and done.access_expires_at == clock.now() + timedelta(days=90)


def test_rotation_replaces_the_refresh_token_and_remembers_the_previous_one(
    engine: Engine, clock: FrozenClock
) -> None:
    store_client(engine, client(ORG))
    pair = _pair(engine, clock.now())
    store = RefreshStore(engine, rotate=True, limits=LIMITS)
    rotated = new_secret()
    assert _refresh(store, pair, clock.now(), new_refresh_hash=secret_hash(rotated)) is not None
    assert _refresh(store, pair, clock.now(), new_refresh_hash=secret_hash(new_secret())) is None
    with engine.connect() as conn:
        assert repo.find_by_refresh_hash(conn, secret_hash(rotated)) is not None
        previous = repo.find_by_previous_refresh_hash(conn, secret_hash(pair.refresh_token))
        assert previous is not None and previous.id == pair.grant.id
    with pytest.raises(ValueError):
        _refresh(store, pair, clock.now())


def test_refreshes_submitted_together_share_one_commit(engine: Engine, clock: FrozenClock) -> None:
    """Group commit: every job gets its own result, a failing job does not spoil the others,
    and each refresh has its audit row."""
    store_client(engine, client(ORG))
    pairs = [_pair(engine, clock.now(), psu_id=f"psu-{i}") for i in range(5)]
    store = RefreshStore(engine, rotate=False, limits=LIMITS)

    def job(pair: repo.IssuedPair, **changes: Any) -> Any:
        values: dict[str, Any] = {
            "refresh_hash": secret_hash(pair.refresh_token),
            "presenter": PRESENTER,
            "access_hash": secret_hash(new_secret()),
            "access_expires_at": clock.now() + timedelta(hours=1),
            "access_cnf": "cnf-2",
            "now": clock.now(),
            "request_id": None,
        }
        values.update(changes)
        return store.job(**values)

    jobs = [job(p) for p in pairs[:4]] + [
        job(pairs[4], presenter=Presenter(OTHER_ORG, ORG, frozenset({"aisp"})))
    ]

    async def submit_together() -> list[Any]:
        return await asyncio.gather(*(store.refresh_soon(j) for j in jobs))

    results = asyncio.run(submit_together())
    assert [r.psu_id if r else None for r in results] == ["psu-0", "psu-1", "psu-2", "psu-3", None]
    with engine.connect() as conn:
        audited = conn.execute(select(audit_events.c.psu_id)).scalars().all()
    assert sorted(audited) == ["psu-0", "psu-1", "psu-2", "psu-3"]


# --- SQLite: several workers write to one file ----------------------------------------------


def _sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Engine:
    path = tmp_path / "workers.db"
    shutil.copy(sqlite_template, path)
    return make_engine(f"sqlite:///{path}", 2)


def _one_refresh_job(store: RefreshStore, pair: repo.IssuedPair, now: datetime) -> Any:
    return store.job(
        refresh_hash=secret_hash(pair.refresh_token),
        presenter=PRESENTER,
        access_hash=secret_hash(new_secret()),
        access_expires_at=now + timedelta(hours=1),
        access_cnf="cnf-2",
        now=now,
        request_id=None,
    )


def test_sqlite_refresh_waits_for_another_writer_then_succeeds(
    sqlite_template: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    engine = _sqlite_engine(sqlite_template, tmp_path)
    store_client(engine, client(ORG))
    pair = _pair(engine, clock.now())
    store = RefreshStore(engine, rotate=False, limits=LIMITS)
    other_worker = sqlite3.connect(
        str(tmp_path / "workers.db"), isolation_level=None, check_same_thread=False
    )
    other_worker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, lambda: other_worker.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    assert store.refresh(_one_refresh_job(store, pair, clock.now())) is not None
    assert time.monotonic() - started >= 0.15
    release.join()
    other_worker.close()
    engine.dispose()


def test_sqlite_refresh_gives_up_after_the_busy_wait_and_recovers(
    sqlite_template: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    engine = _sqlite_engine(sqlite_template, tmp_path)
    store_client(engine, client(ORG))
    pair = _pair(engine, clock.now())
    store = RefreshStore(engine, rotate=False, limits=LIMITS, lock_wait_seconds=0.05)
    other_worker = sqlite3.connect(str(tmp_path / "workers.db"), isolation_level=None)
    other_worker.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        store.refresh(_one_refresh_job(store, pair, clock.now()))
    other_worker.execute("COMMIT")
    other_worker.close()
    assert store.refresh(_one_refresh_job(store, pair, clock.now())) is not None
    engine.dispose()
    assert store.refresh(_one_refresh_job(store, pair, clock.now())) is not None
    engine.dispose()
