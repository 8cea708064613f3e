"""``oidc_logins`` rows: what binds the OP's answer to the journey that asked for it.

Per redirect to the OP, three fresh secrets (`stetgate.secrets.new_secret`, 256 bits):

- ``state`` (RFC 6749 §10.12, OIDC Core §3.1.2.1): the callback finds its row by the digest of
  ``state``, and the browser's session cookie must name the same journey — a callback pasted
  into another browser (login CSRF) matches no journey;
- ``nonce`` (OIDC Core §3.1.2.1, §15.5.2): only its digest is stored; the ID token must carry
  the nonce whose digest it is;
- the PKCE ``code_verifier`` (RFC 7636 §4.1): sent at the token endpoint, so kept as is; it is
  useless without the code, which never touches the database.

A row is consumed once (``used_at``, a conditional UPDATE): a replayed callback — the same
``state`` and code a second time — is refused before anything is sent to the OP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from stetgate.oauth.pkce import s256_challenge
from stetgate.secrets import new_secret, secret_hash
from stetgate.store.schema import oidc_logins


@dataclass(frozen=True)
class NewLogin:
    state: str
    nonce: str
    code_challenge: str
    """S256 of the verifier (RFC 7636 §4.2), for the authorization request."""


@dataclass(frozen=True)
class PendingLogin:
    journey_id_hash: str
    nonce_hash: str
    code_verifier: str
    used: bool


def start_login(conn: Connection, journey_id_hash: str, now: datetime) -> NewLogin:
    state, nonce, verifier = new_secret(), new_secret(), new_secret()
    conn.execute(
        insert(oidc_logins).values(
            state_hash=secret_hash(state),
            journey_id_hash=journey_id_hash,
            nonce_hash=secret_hash(nonce),
            code_verifier=verifier,
            created_at=now,
            used_at=None,
        )
    )
    return NewLogin(state=state, nonce=nonce, code_challenge=s256_challenge(verifier))


def find_login(conn: Connection, state: str) -> PendingLogin | None:
    row = (
        conn.execute(select(oidc_logins).where(oidc_logins.c.state_hash == secret_hash(state)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return PendingLogin(
        journey_id_hash=row["journey_id_hash"],
        nonce_hash=row["nonce_hash"],
        code_verifier=row["code_verifier"],
        used=row["used_at"] is not None,
    )


def consume_login(conn: Connection, state: str, now: datetime) -> bool:
    """Mark the row used; False when it already was (a replay, or a concurrent callback)."""
    result = conn.execute(
        update(oidc_logins)
        .where(oidc_logins.c.state_hash == secret_hash(state))
        .where(oidc_logins.c.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1
