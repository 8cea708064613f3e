"""`DatabasePsuDirectory`: stetgate's built-in `stetgate.bank.psus.PsuDirectory` over the
``psus`` table (the sandbox's and the demo bank's PSUs). Rules it carries:

- Passwords are argon2id hashes (RFC 9106). Parameters follow OWASP's argon2id profile
  (19 MiB, 2 passes, 1 lane: ~60 ms on one core) rather than RFC 9106's 64 MiB × 4 lanes
  (~300 ms on two cores), so a login does not monopolise a small server; hashes carry their
  parameters, and a verified password with outdated parameters is re-hashed.
- An unknown PSU id costs the same argon2 verification as a wrong password (a dummy hash), so
  neither the message nor the timing tells whether an id exists.
- TOTP secrets are stored encrypted (Fernet, key from `InstanceKeys.totp_fernet`); a code's
  time step is recorded when accepted and older or equal steps are refused (RFC 6238 §5.2) as
  `TotpCheck.REUSED` — also when a concurrent request accepted the same step first.
- Failures: `max_failed_attempts` consecutive failed identification or SCA attempts block the
  PSU for `block_seconds` (RTS (EU) 2018/389 Art. 4(3)(b)); the counter restarts after a block
  and after a completed SCA. Counting and blocking is one UPDATE, so concurrent attempts cannot
  slip past the limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, case, insert, or_, select, update

from stetgate.bank.psus import (
    MAX_PASSWORD_LENGTH,
    PSU_ID_PATTERN,
    FailedAttempt,
    Psu,
    TotpCheck,
)
from stetgate.demo.totp import (
    already_accepted,
    decode_totp_secret,
    new_totp_secret,
    totp_at,
    window_step,
)
from stetgate.store.db import read_connection
from stetgate.store.schema import psus


def password_hasher() -> PasswordHasher:
    """argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1)."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class InvalidPsu(ValueError):
    """A PSU cannot be created with these values (id format, empty password, duplicate)."""


class DatabasePsuDirectory:
    """The demo bank's `PsuDirectory` over the ``psus`` table."""

    def __init__(
        self,
        engine: Engine,
        totp_fernet: Fernet,
        *,
        max_failed_attempts: int,
        block_seconds: int,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._engine = engine
        self._fernet = totp_fernet
        self._max_failed = max_failed_attempts
        self._block = timedelta(seconds=block_seconds)
        self._hasher = hasher or password_hasher()

    @cached_property
    def _dummy_hash(self) -> str:
        """A hash verified for unknown ids so they cost as much as known ones."""
        return self._hasher.hash(new_totp_secret())

    # --- reading ---------------------------------------------------------------------------
    def find(self, psu_id: str) -> Psu | None:
        if not PSU_ID_PATTERN.fullmatch(psu_id):
            return None
        with read_connection(self._engine) as conn:
            row = conn.execute(select(psus).where(psus.c.psu_id == psu_id)).mappings().first()
        return None if row is None else _psu(row)

    def list_psus(self) -> list[Psu]:
        with read_connection(self._engine) as conn:
            rows = conn.execute(select(psus).order_by(psus.c.psu_id)).mappings().all()
        return [_psu(row) for row in rows]

    # --- factors ---------------------------------------------------------------------------
    def check_password(self, psu_id: str, password: str) -> bool:
        stored: str | None = None
        if PSU_ID_PATTERN.fullmatch(psu_id):
            with read_connection(self._engine) as conn:
                stored = conn.execute(
                    select(psus.c.password_hash).where(psus.c.psu_id == psu_id)
                ).scalar_one_or_none()
        candidate = password[:MAX_PASSWORD_LENGTH]
        try:
            self._hasher.verify(stored or self._dummy_hash, candidate)
        except (VerificationError, InvalidHashError):
            return False
        if stored is None or len(password) > MAX_PASSWORD_LENGTH:
            return False
        if self._hasher.check_needs_rehash(stored):
            with self._engine.begin() as conn:
                conn.execute(
                    update(psus)
                    .where(psus.c.psu_id == psu_id)
                    .values(password_hash=self._hasher.hash(password))
                )
        return True

    def check_totp(self, psu_id: str, code: str, now: datetime) -> TotpCheck:
        if not PSU_ID_PATTERN.fullmatch(psu_id):
            return TotpCheck.WRONG
        with self._engine.begin() as conn:
            row = conn.execute(
                select(psus.c.totp_secret_enc, psus.c.totp_last_step).where(psus.c.psu_id == psu_id)
            ).first()
            if row is None or row.totp_secret_enc is None:
                return TotpCheck.WRONG
            key = self._totp_key(row.totp_secret_enc)
            step = window_step(key, code.strip(), now)
            if step is None:
                return TotpCheck.WRONG
            if already_accepted(step, row.totp_last_step):
                return TotpCheck.REUSED
            # The compare-and-set: of two requests with the same code, one wins; the other
            # finds the step taken — a reuse too.
            accepted = conn.execute(
                update(psus)
                .where(psus.c.psu_id == psu_id)
                .where(or_(psus.c.totp_last_step.is_(None), psus.c.totp_last_step < step))
                .values(totp_last_step=step)
            )
            return TotpCheck.ACCEPTED if accepted.rowcount == 1 else TotpCheck.REUSED

    def current_totp(self, psu_id: str, now: datetime) -> str | None:
        """The code the PSU's authenticator shows now (sandbox "phone" page and CLI only)."""
        with read_connection(self._engine) as conn:
            enc = conn.execute(
                select(psus.c.totp_secret_enc).where(psus.c.psu_id == psu_id)
            ).scalar_one_or_none()
        return None if enc is None else totp_at(self._totp_key(enc), now)

    def _totp_key(self, encrypted: str) -> bytes:
        try:
            return decode_totp_secret(self._fernet.decrypt(encrypted.encode()).decode())
        except InvalidToken:
            raise RuntimeError(
                "cannot decrypt a stored TOTP secret: the instance secret key changed "
                "(all servers of a bank must share STETGATE_SECRET_KEY / secret.key)"
            ) from None

    # --- failures and blocks ---------------------------------------------------------------
    def record_failed_attempt(self, psu_id: str, now: datetime) -> FailedAttempt:
        reaches_limit = psus.c.failed_attempts + 1 >= self._max_failed
        until = now + self._block
        with self._engine.begin() as conn:
            row = conn.execute(
                update(psus)
                .where(psus.c.psu_id == psu_id)
                .values(
                    failed_attempts=case((reaches_limit, 0), else_=psus.c.failed_attempts + 1),
                    blocked_until=case((reaches_limit, until), else_=psus.c.blocked_until),
                )
                .returning(psus.c.failed_attempts, psus.c.blocked_until)
            ).first()
        if row is None:
            return FailedAttempt(consecutive_failures=0, blocked_until=None)
        # The count only goes back to 0 when this attempt reached the limit. (Comparing the
        # stored block end with `until` misread an attempt during a block set at the same
        # instant — a frozen test clock — as a new block.)
        if row.failed_attempts == 0:
            return FailedAttempt(consecutive_failures=self._max_failed, blocked_until=until)
        return FailedAttempt(consecutive_failures=row.failed_attempts, blocked_until=None)

    def record_successful_authentication(self, psu_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(psus).where(psus.c.psu_id == psu_id).values(failed_attempts=0))

    def block(self, psu_id: str, until: datetime) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(psus).where(psus.c.psu_id == psu_id).values(blocked_until=until)
            )
        return result.rowcount == 1

    def unblock(self, psu_id: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(psus)
                .where(psus.c.psu_id == psu_id)
                .values(blocked_until=None, failed_attempts=0)
            )
        return result.rowcount == 1

    # --- enrolment -------------------------------------------------------------------------
    def add_psu(
        self,
        psu_id: str,
        password: str,
        *,
        display_name: str | None = None,
        totp_secret: str | None = None,
        app_sca: bool = True,
        now: datetime,
    ) -> str:
        """Create a PSU with a TOTP secret (generated when not given); returns the secret."""
        if not PSU_ID_PATTERN.fullmatch(psu_id):
            raise InvalidPsu("PSU id must be 1-64 characters among A-Z a-z 0-9 . _ @ + -")
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidPsu(f"password must be 1-{MAX_PASSWORD_LENGTH} characters")
        name = (display_name or psu_id).strip()
        if not name or len(name) > 200:
            raise InvalidPsu("display name must be 1-200 characters")
        secret = totp_secret or new_totp_secret()
        decode_totp_secret(secret)
        with self._engine.begin() as conn:
            if conn.execute(select(psus.c.psu_id).where(psus.c.psu_id == psu_id)).first():
                raise InvalidPsu(f"PSU {psu_id!r} already exists")
            conn.execute(
                insert(psus).values(
                    psu_id=psu_id,
                    display_name=name,
                    password_hash=self._hasher.hash(password),
                    totp_secret_enc=self._encrypt(secret),
                    totp_last_step=None,
                    app_sca=app_sca,
                    failed_attempts=0,
                    blocked_until=None,
                    created_at=now,
                )
            )
        return _normalised(secret)

    def enrol_totp(self, psu_id: str, secret: str) -> None:
        decode_totp_secret(secret)
        with self._engine.begin() as conn:
            conn.execute(
                update(psus)
                .where(psus.c.psu_id == psu_id)
                .values(totp_secret_enc=self._encrypt(secret), totp_last_step=None)
            )

    def enrol_app(self, psu_id: str, enabled: bool) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(psus).where(psus.c.psu_id == psu_id).values(app_sca=enabled))

    def _encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(_normalised(secret).encode()).decode()


def _normalised(secret: str) -> str:
    return "".join(secret.split()).upper().rstrip("=")


def _psu(row: object) -> Psu:
    r = dict(row)  # type: ignore[call-overload]
    return Psu(
        psu_id=r["psu_id"],
        display_name=r["display_name"],
        has_totp=r["totp_secret_enc"] is not None,
        app_sca=bool(r["app_sca"]),
        failed_attempts=int(r["failed_attempts"]),
        blocked_until=r["blocked_until"],
        created_at=r["created_at"],
    )
