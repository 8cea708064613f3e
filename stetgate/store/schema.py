"""Database schema (SQLAlchemy Core tables), shared by SQLite and PostgreSQL.

Core rather than ORM on purpose: the hot paths (refresh grant, token lookup on every API call)
are single statements, and Core with compiled-statement caching keeps them at one round trip
without identity-map overhead. Secrets (tokens, codes, session ids) appear only as SHA-256 hex
digests; passwords as argon2id hashes; TOTP secrets encrypted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use the injected clock (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonText(TypeDecorator[Any]):
    """JSON stored as text: identical behaviour on SQLite and PostgreSQL, no dialect JSON quirks."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- TPP clients (Go-Live and API register) --------------------------------------------------
clients = Table(
    "clients",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("origin", String(10), nullable=False),  # golive | register
    Column("status", String(12), nullable=False, default="active"),  # active | suspended
    Column("redirect_uris", JsonText, nullable=False),
    Column("require_pkce", Boolean, nullable=False, default=False),
    Column("contacts", JsonText, nullable=True),
    Column("grant_types", JsonText, nullable=True),
    Column("response_types", JsonText, nullable=True),
    Column("registration_token_hash", String(64), nullable=True, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

client_certificates = Table(
    "client_certificates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "client_id",
        String(100),
        ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(8), nullable=False),  # qwac | qsealc
    Column("pem", Text, nullable=False),
    Column("thumbprint", String(64), nullable=False),  # x5t#S256, base64url
    Column("serial_hex", String(64), nullable=False),
    Column("issuer_dn", String(500), nullable=False),
    Column("kid", String(200), nullable=True),
    Column("url", String(500), nullable=True),
    Column("not_after", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("client_id", "kind", "thumbprint"),
)

# --- PSUs (demo bank's identity store; a core-banking adapter may replace it) ----------------
psus = Table(
    "psus",
    metadata,
    Column("psu_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("totp_secret_enc", Text, nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),  # RFC 6238 §5.2: refuse code replay
    Column("app_sca", Boolean, nullable=False, default=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("blocked_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- PSU journeys at /authorize (server-side sessions) ---------------------------------------
psu_journeys = Table(
    "psu_journeys",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", String(200), nullable=False),
    Column("state", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(10), nullable=True),
    Column("lang", String(2), nullable=False),
    Column("psu_id", String(64), nullable=True),
    Column("stage", String(16), nullable=False),  # identify | method | sca | consent | done
    Column("sca_method", String(8), nullable=True),  # totp | app
    Column("app_challenge_id", String(64), nullable=True, unique=True),
    Column("app_challenge_status", String(10), nullable=True),  # pending|approved|rejected|expired
    Column("csrf_token", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_activity_at", UtcDateTime, nullable=False),
    Column("sca_completed_at", UtcDateTime, nullable=True),
    Column("outcome", String(32), nullable=True),
    # --- PSU side (migration 0002_psu_journey_kind) ---
    # authorize: a TPP's /authorize journey; connected_apps: the PSU's own sign-in to /psu/…
    Column("kind", String(16), nullable=False, server_default="authorize"),
    # consecutive failed attempts in this journey, whatever the PSU id typed (RTS Art. 4(3)(b))
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    # --- decoupled SCA over HTTP (migration 0005_sca_service_challenge) ---
    # the challenge id the bank's SCA service gave (`stetgate.sca_http`); app_challenge_id
    # stays stetgate's reference shown to the PSU
    Column("sca_service_challenge_id", String(128), nullable=True, unique=True),
    Index("ix_psu_journeys_psu_id", "psu_id"),
)

# --- delegated PSU login at the bank's OpenID Provider (migration 0004_oidc_logins) --------
# One row per redirect to the OP: the callback's `state` finds it (by digest), it binds the
# answer to its journey and carries the PKCE verifier and the nonce digest (OIDC Core §3.1.2.1,
# §15.5.2; RFC 7636 §4.1). ``used_at`` makes a callback count once (a replay is refused).
oidc_logins = Table(
    "oidc_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("journey_id_hash", String(64), nullable=False, index=True),
    Column("nonce_hash", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

# --- authorization codes (RFC 6749 §4.1.2: short-lived, single use) --------------------------
authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("org_id", String(64), nullable=False),
    Column("psu_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", String(200), nullable=False),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(10), nullable=True),
    Column("sca_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("grant_id", String(32), nullable=True),
)

# --- token pairs: one row per (access token, refresh token) pair -----------------------------
grants = Table(
    "grants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("client_id", String(100), nullable=False, index=True),
    Column("org_id", String(64), nullable=False),
    Column("psu_id", String(64), nullable=False),
    Column("role", String(8), nullable=False),  # aisp | cbpii
    Column("scope", String(200), nullable=False),  # granted at SCA
    Column("sca_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("refresh_hash", String(64), nullable=False, unique=True),
    Column("refresh_expires_at", UtcDateTime, nullable=False),
    Column("previous_refresh_hash", String(64), nullable=True, unique=True),
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("access_scope", String(200), nullable=False),
    Column("access_expires_at", UtcDateTime, nullable=False),
    Column("access_cnf", String(64), nullable=False),  # x5t#S256 of the QWAC (RFC 8705 §3)
    Column("code_hash", String(64), nullable=True, unique=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_reason", String(40), nullable=True),
    Index("ix_grants_owner", "psu_id", "org_id", "role"),
)

# --- client-credentials tokens (registration API: scope manageRegistration) -----------------
service_tokens = Table(
    "service_tokens",
    metadata,
    Column("access_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("org_id", String(64), nullable=False, index=True),
    Column("scope", String(200), nullable=False),
    Column("cnf", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- audit trail: every decision, never a secret ---------------------------------------------
audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("event", String(48), nullable=False),
    Column("client_id", String(100), nullable=True),
    Column("org_id", String(64), nullable=True),
    Column("psu_id", String(64), nullable=True),
    Column("request_id", String(100), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("detail", JsonText, nullable=True),
)

# --- bank data of the demo bank, STET consents, unattended-access counters --------------------
# The bank_* tables are the demo bank's ledger (stetgate.demo.bank); a core-banking adapter
# replaces them. psd2_* tables belong to the resource API itself (stetgate.psd2).
bank_accounts = Table(
    "bank_accounts",
    metadata,
    Column("resource_id", String(35), primary_key=True),
    Column("bic", String(11), nullable=False),
    Column("iban", String(34), nullable=True, unique=True),
    Column("other_identification", String(70), nullable=True),
    Column("other_scheme", String(35), nullable=True),
    Column("other_issuer", String(35), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("name", String(70), nullable=False),
    Column("details", String(140), nullable=True),
    Column("linked_account", String(35), nullable=True),
    Column("usage", String(4), nullable=False),  # PRIV | ORGA
    Column("cash_account_type", String(4), nullable=False),  # CACC | CARD
    Column("product", String(70), nullable=False),
    Column("overdraft_minor", BigInteger, nullable=False, default=0),
)

bank_account_holders = Table(
    "bank_account_holders",
    metadata,
    Column("psu_id", String(64), primary_key=True),
    Column(
        "account_id",
        String(35),
        ForeignKey("bank_accounts.resource_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, nullable=False),
    Column("psu_status", String(40), nullable=False),  # Account Holder | Co-account Holder
)

bank_balances = Table(
    "bank_balances",
    metadata,
    Column(
        "account_id",
        String(35),
        ForeignKey("bank_accounts.resource_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("balance_type", String(4), primary_key=True),  # CLBD | XPCD | OTHR
    Column("position", Integer, nullable=False),
    Column("name", String(70), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("reference_date", Date, nullable=True),
    Column("last_change_at", UtcDateTime, nullable=True),
    Column("last_committed_entry", BigInteger, nullable=True),
)

bank_transactions = Table(
    "bank_transactions",
    metadata,
    Column(
        "account_id",
        String(35),
        ForeignKey("bank_accounts.resource_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("entry_reference", BigInteger, primary_key=True),
    Column("resource_id", String(35), nullable=False, unique=True),
    Column("amount_minor", BigInteger, nullable=False),  # positive; sign in credit_debit
    Column("credit_debit", String(4), nullable=False),  # CRDT | DBIT
    Column("status", String(4), nullable=False),  # BOOK | PDNG
    Column("imputation_date", Date, nullable=False),  # booking date, or transaction date if PDNG
    Column("booking_date", Date, nullable=True),
    Column("value_date", Date, nullable=True),
    Column("transaction_date", Date, nullable=True),
    Column("remittance", JsonText, nullable=False),
    Index("ix_bank_transactions_account_imputation", "account_id", "imputation_date"),
)

bank_beneficiaries = Table(
    "bank_beneficiaries",
    metadata,
    Column("id", String(35), primary_key=True),
    Column("psu_id", String(64), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("creditor_name", String(70), nullable=False),
    Column("creditor_iban", String(34), nullable=False),
    Column("creditor_bic", String(11), nullable=True),
    Column("country", String(2), nullable=True),
    Column("address_lines", JsonText, nullable=True),
)

psd2_consents = Table(
    "psd2_consents",
    metadata,
    Column("psu_id", String(64), primary_key=True),
    Column("org_id", String(64), primary_key=True),
    Column("balances", JsonText, nullable=False),  # account resource ids
    Column("transactions", JsonText, nullable=False),  # account resource ids
    Column("trusted_beneficiaries", Boolean, nullable=False),
    Column("psu_identity", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

psd2_unattended_access = Table(
    "psd2_unattended_access",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("psu_id", String(64), primary_key=True),
    Column("endpoint", String(32), primary_key=True),
    Column("resource", String(35), primary_key=True),  # account resource id, or "" (PSU level)
    Column("window_key", String(10), primary_key=True),  # local date, or "rolling"
    Column("count", Integer, nullable=False),
    Column("hits", Text, nullable=False),  # rolling window: last accesses, fixed-width epoch ms
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# --- PSD2 statistics (stetgate.statistics) --------------------------------------------------
# One row per UTC minute and key, only ever added to (``INSERT … ON CONFLICT DO UPDATE SET n =
# n + excluded.n``): every worker adds its own counts, so the rows hold the whole instance's.

statistics_requests = Table(
    "statistics_requests",
    metadata,
    Column("minute", UtcDateTime, primary_key=True),
    Column("family", String(16), primary_key=True),  # authorization, token, aisp, cbpii
    Column("status_class", Integer, primary_key=True),  # 2, 3, 4 or 5 (status // 100)
    Column("requests", BigInteger, nullable=False),
    Column("latency_us", BigInteger, nullable=False),  # sum of response times, microseconds
)

statistics_latency = Table(
    "statistics_latency",
    metadata,
    Column("minute", UtcDateTime, primary_key=True),
    Column("family", String(16), primary_key=True),
    Column("bucket", Integer, primary_key=True),  # stetgate.statistics.histogram.BOUNDS_US
    Column("requests", BigInteger, nullable=False),
)

statistics_availability = Table(
    "statistics_availability",
    metadata,
    Column("minute", UtcDateTime, primary_key=True),
    Column("probes_up", Integer, nullable=False),
    Column("probes_down", Integer, nullable=False),
    Column("failure_runs", Integer, nullable=False),  # EBA GL 2.4(c) runs touching the minute
)
