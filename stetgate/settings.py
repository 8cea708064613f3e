"""One typed settings object for a stetgate instance.

Every rule that can vary between banks is a field here, with a secure default; the rules are in
docs/decisions.md#settings-index, the operator's view in docs/operations.md#settings-reference.
Values come from, in increasing priority: defaults, an optional TOML file (``STETGATE_CONFIG``
or ``--config``), ``STETGATE_*`` environment variables, and explicit keyword arguments (CLI
flags). Invalid values fail at start with pydantic's message, which names the field (e.g.
``sca_validity_days``).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DATA_DIR = Path("./var")


class Settings(BaseSettings):
    """Runtime configuration; the operator's reference is docs/operations.md#settings-reference."""

    model_config = SettingsConfigDict(env_prefix="STETGATE_", extra="forbid", frozen=True)

    # --- where state lives -------------------------------------------------------------------
    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="Folder holding all state of one instance."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Unset: SQLite file DATA_DIR/stetgate.db. "
        "postgresql+psycopg://… for PostgreSQL (workers then share state across machines).",
    )
    db_pool_size: int = Field(8, ge=1, le=200)
    db_threads: int = Field(
        8,
        ge=1,
        le=400,
        description="Threads per worker that run database and bank-backend calls off the event "
        "loop; at most 2 × db_pool_size (each engine's pool plus its overflow).",
    )
    db_statement_timeout_ms: int = Field(
        5000,
        ge=50,
        le=600_000,
        description="A statement running longer is cancelled; its request fails with 503.",
    )
    db_lock_timeout_ms: int = Field(
        2000,
        ge=10,
        le=600_000,
        description="Longest wait for a row or table lock (PostgreSQL lock_timeout, SQLite "
        "busy timeout); past it the request fails with 503 and changes nothing.",
    )

    # --- serving -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    graceful_shutdown_seconds: int = Field(
        10,
        ge=1,
        le=300,
        description="On SIGTERM, how long requests in flight may take to finish before the "
        "worker exits (idle keep-alive connections are closed at once; a peer that never "
        "answers TLS close_notify is not waited for past this).",
    )
    gc_sweep_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="A serving worker collects its reference cycles at least this often "
        "(0: only when the collector's own thresholds say). The serving thresholds "
        "(`stetgate.serving.heap`) make young collections rare, and under a steady load "
        "cyclic garbage otherwise waits tens of minutes in memory.",
    )
    issuer: str | None = Field(
        None,
        description="Public base URL (RFC 8414 issuer, RFC 9207 iss). Default https://HOST:PORT "
        "with 'localhost' for 127.0.0.1.",
    )
    tls_cert_file: Path | None = Field(
        None, description="Server certificate; default DATA_DIR/server.pem"
    )
    tls_key_file: Path | None = Field(None, description="Server key; default DATA_DIR/server.key")
    trust_dir: Path | None = Field(
        None, description="Folder of trusted QTSP CA certificates (PEM); default DATA_DIR/trust"
    )
    crl_dir: Path | None = Field(
        None, description="Folder of CRLs (DER or PEM); default DATA_DIR/crl"
    )
    crl_poll_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="How often each worker looks at the CRL and trust folders for changes.",
    )
    # --- revocation data (docs/operations.md#revocation-data) ---------------------------------
    revocation_fetch: bool = Field(
        True,
        description="Fetch CRLs (distribution points) and OCSP responses (AIA) of the "
        "certificates that chain to the trust anchors into crl_dir; one worker per instance "
        "fetches (a lock file), the others read the folder.",
    )
    crl_refresh_seconds: float = Field(
        3600.0,
        ge=0.1,
        le=7 * 86400,
        description="Longest time between two fetches of one CRL or OCSP response; a revoked "
        "certificate is refused at most this long (plus crl_poll_seconds) after the QTSP "
        "publishes it.",
    )
    crl_refresh_margin_seconds: float = Field(
        600.0,
        ge=0,
        le=86400,
        description="Fetch again at least this long before the stored data's nextUpdate.",
    )
    revocation_retry_seconds: float = Field(
        60.0, ge=0.1, le=86400, description="Wait after a failed fetch before trying again."
    )
    revocation_fetch_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Connect and read timeout of one fetch."
    )
    revocation_fetch_max_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        le=512 * 1024 * 1024,
        description="Largest CRL or OCSP response accepted.",
    )
    revocation_fetch_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) for https distribution points and responders; "
        "unset: the system's. (CRLs and OCSP responses are signed; TLS adds no trust here.)",
    )
    revocation_policy: Literal["fail-closed", "grace"] = Field(
        "fail-closed",
        description="fail-closed: a certificate without current revocation data (past "
        "nextUpdate, none at all) is refused. grace: data up to revocation_grace_seconds past "
        "its nextUpdate is still used.",
    )
    revocation_grace_seconds: int = Field(
        0, ge=0, le=7 * 86400, description="The grace of revocation_policy = grace."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peer addresses/networks allowed to pass the client certificate in a header "
        "(TLS-terminating reverse proxy). Empty: the header is always ignored.",
    )
    client_cert_header: str = Field(
        "client-cert", description="Header carrying the client certificate from the proxy."
    )
    client_cert_header_format: Literal["rfc9440", "nginx"] = Field(
        "rfc9440",
        description="rfc9440: ':base64-DER:' (RFC 9440 Client-Cert); nginx: URL-encoded PEM "
        "($ssl_client_escaped_cert).",
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)

    # --- observability (docs/operations.md#metrics, #logs) ------------------------------------
    metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="Port of the Prometheus listener (plain HTTP, GET /metrics) that `serve` "
        "runs beside the TLS port; 0 turns it off. Never the TPPs' port.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the metrics listener: the loopback by default, so only the "
        "machine's own Prometheus agent reaches it.",
    )
    access_log: bool = Field(
        True,
        description="One line per request (request id, caller, route template, status, "
        "duration); replaces uvicorn's access log.",
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="json: one JSON object a line (access lines, audit events, messages); "
        "text: the same fields for a human at a terminal.",
    )

    # --- secrets -----------------------------------------------------------------------------
    secret_key: str | None = Field(
        None,
        description="Key for session cookies and for encrypting TOTP secrets at rest. Unset: read "
        "or created in DATA_DIR/secret.key. All workers and servers of a bank must share it.",
        repr=False,
    )

    # --- lifetimes (docs/decisions.md#lifetimes) ----------------------------------------------
    auth_code_ttl_seconds: int = Field(60, ge=10, le=600)
    access_token_ttl_seconds: int = Field(3600, ge=60, le=86400)
    sca_validity_days: int = Field(90, ge=1, le=180)
    psu_idle_timeout_seconds: int = Field(300, ge=30, le=3600)
    psu_journey_timeout_seconds: int = Field(1800, ge=60, le=7200)
    max_failed_auth_attempts: int = Field(5, ge=1, le=20)
    psu_block_seconds: int = Field(900, ge=60, le=86400 * 30)
    password_check_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description="Password checks (argon2id, ~19 MiB and ~20 ms CPU each) run at once per "
        "worker, on threads of their own; more wait. Bounds worker memory under a login burst: "
        "the cores a worker has to itself (1 with one worker per core).",
    )

    # --- token rules ---------------------------------------------------------------------------
    allow_extended_history: bool = False
    rotate_refresh_tokens: bool = False
    registration_client_id: str = "PSD2_TPPRegister"
    registration_token_ttl_seconds: int = Field(600, ge=60, le=3600)

    # --- resource API --------------------------------------------------------------------------
    signature_max_skew_seconds: int = Field(300, ge=5, le=3600)
    unattended_window: Literal["calendar_day", "rolling_24h"] = "calendar_day"
    unattended_limit: int = Field(4, ge=1, le=1000)
    unattended_timezone: str = "Europe/Paris"
    redis_url: str | None = Field(
        None, description="Optional Redis for unattended-access counters."
    )

    # --- core banking over HTTP (docs/bank-integration.md) -------------------------------------
    bank_url: str | None = Field(
        None,
        description="Base URL of the core-banking service (contract /core-banking/v1, e.g. "
        "https://core.bank.internal). Unset: the in-process demo bank on this database.",
    )
    bank_auth: Literal["mtls", "client_credentials", "none"] = Field(
        "mtls",
        description="How stetgate authenticates to bank_url: a TLS client certificate "
        "(bank_client_cert_file), an OAuth 2 client-credentials token (bank_token_url, "
        "bank_client_id, bank_client_secret), or none (plain http on loopback only: the demo).",
    )
    bank_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) the backend's certificate must chain to; "
        "unset: the system's.",
    )
    bank_client_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for bank_auth = mtls (may hold the key)."
    )
    bank_client_key_file: Path | None = Field(None, description="Its private key (PEM).")
    bank_token_url: str | None = Field(None, description="Token endpoint (client_credentials).")
    bank_client_id: str | None = None
    bank_client_secret: str | None = Field(None, repr=False)
    bank_token_scope: str | None = None
    bank_timeout_ms: int = Field(
        2000,
        ge=50,
        le=60_000,
        description="Time budget of one backend call, retries included; past it the API call "
        "fails with 504.",
    )
    bank_retries: int = Field(
        2, ge=0, le=5, description="Retries of a GET after a connection failure or 502/503/504."
    )
    bank_retry_backoff_ms: int = Field(
        50, ge=1, le=5000, description="Backoff base: retry n waits U(0, base × 2^n)."
    )
    bank_max_connections: int = Field(
        16, ge=1, le=400, description="Connections (kept alive) to the backend per worker."
    )
    bank_breaker_failures: int = Field(
        5, ge=1, le=1000, description="Consecutive failed calls that open the circuit breaker."
    )
    bank_breaker_cooldown_seconds: float = Field(
        10.0, ge=0, le=3600, description="How long an open breaker fails calls at once."
    )

    # --- PSU pages -------------------------------------------------------------------------------
    default_language: str = Field(
        "fr",
        pattern=r"^[a-z]{2}$",
        description="Language of the PSU pages when the TPP or the PSU asks for none they have: "
        "fr, en, or a language the theme adds.",
    )
    theme_dir: Path | None = Field(
        None,
        description="The bank's theme folder for the PSU pages: logo, colours, texts, "
        "templates (docs/operations.md#theme). Unset: the built-in look.",
    )
    enable_demo_pages: bool = Field(
        False,
        description="Serve the demo bank's 'phone' pages (TOTP display, app approval). "
        "Sandbox only; never in production.",
    )
    # --- decoupled SCA over HTTP (docs/bank-integration-sca.md) ---------------------------------
    sca_http_url: str | None = Field(
        None,
        description="Base URL of the bank's SCA service (the 'confirm in your banking app' "
        "contract, stetgate/sca_http/openapi.json). Unset: the app method stays in-process "
        "(the demo phone answers it).",
    )
    sca_http_secret: str | None = Field(
        None,
        description="Shared secret (at least 32 characters) of the HMAC-SHA256 signatures on "
        "both directions of the SCA-service contract. Required with sca_http_url.",
    )
    sca_http_mode: Literal["callback", "poll"] = Field(
        "callback",
        description="callback: the SCA service POSTs the answer to /psu/sca/callback; poll: "
        "stetgate asks GET /challenges/{id} while the PSU waits.",
    )
    sca_http_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Connect and read timeout of each call to the SCA service; past it the PSU "
        "sees the 'temporarily unavailable' page and the journey is unchanged.",
    )
    sca_http_max_skew_seconds: int = Field(
        300,
        ge=5,
        le=3600,
        description="A signed callback whose timestamp is further from stetgate's clock is "
        "refused (replay window).",
    )
    introspection_org_ids: list[str] = Field(
        default_factory=list,
        description="organizationIdentifiers of the bank's own resource servers (QWAC with role "
        "PSP_AS) allowed to introspect any token (RFC 7662 §2.1). A TPP may introspect only its "
        "own tokens.",
    )
    cookie_secure: bool = True

    # --- delegated PSU login over OpenID Connect ---------------------------------------------
    # (docs/operations.md#delegated-psu-login-openid-connect)
    oidc_issuer: str | None = Field(
        None,
        description="Issuer of the bank's own OpenID Provider. Set: the PSU signs in there "
        "(authorization code + PKCE) instead of the local password and SCA pages.",
    )
    oidc_client_id: str | None = Field(None, description="stetgate's client_id at the OP.")
    oidc_client_secret: str | None = Field(
        None, description="Secret for client_secret_basic/client_secret_post.", repr=False
    )
    oidc_client_auth: Literal["client_secret_basic", "client_secret_post", "private_key_jwt"] = (
        Field(
            "client_secret_basic", description="Client authentication at the OP's token endpoint."
        )
    )
    oidc_private_key_file: Path | None = Field(
        None, description="PEM private key signing the private_key_jwt client assertion."
    )
    oidc_private_key_kid: str | None = Field(
        None, description="kid of that key as registered at the OP (its JWKS)."
    )
    oidc_scopes: list[str] = Field(default_factory=lambda: ["openid"])
    oidc_acr_values: list[str] = Field(
        default_factory=list,
        description="acr_values sent to the OP (OIDC Core §3.1.2.1), most preferred first: the "
        "OP's name(s) for strong customer authentication.",
    )
    oidc_accepted_acr: list[str] = Field(
        default_factory=list,
        description="acr values accepted in the ID token as SCA; empty: oidc_acr_values. An ID "
        "token with another or no acr ends the journey with authentication_failed.",
    )
    oidc_psu_id_claim: str = Field(
        "sub", description="ID token claim holding the PSU id (the directory's psu_id)."
    )
    oidc_leeway_seconds: int = Field(30, ge=0, le=300)
    oidc_http_timeout_seconds: float = Field(5.0, gt=0, le=60)
    oidc_ca_file: Path | None = Field(
        None, description="CA bundle to verify the OP's TLS certificate; unset: system CAs."
    )
    oidc_jwks_refetch_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Least time between two JWKS refetches caused by an unknown kid.",
    )

    # --- PSD2 statistics (docs/operations.md#psd2-statistics) ---------------------------------
    statistics_enabled: bool = Field(
        True,
        description="Record request counts, response times and availability of the dedicated "
        "interface (RTS 2018/389 Art. 32(4), EBA/GL/2018/07 GL 2-3) for `report statistics`.",
    )
    statistics_flush_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How often each worker adds what it counted in memory to the database.",
    )
    statistics_probe_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="How often each worker probes the database and the core-banking backend; "
        "a minute with no probe at all counts as down.",
    )
    statistics_retention_days: int = Field(
        800,
        ge=100,
        le=3650,
        description="`db purge` deletes statistics minutes older than this (two years of "
        "quarterly publications and more).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("unattended_timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        ZoneInfo(value)
        return value

    @model_validator(mode="after")
    def _issuer_is_https(self) -> Settings:
        if self.issuer is not None and not self.issuer.startswith("https://"):
            raise ValueError("issuer must be an https:// URL (RFC 8414 §2)")
        return self

    @model_validator(mode="after")
    def _bank_backend_is_complete(self) -> Settings:
        if self.bank_url is None:
            return self
        if not self.bank_url.startswith(("https://", "http://")):
            raise ValueError("bank_url must be an http(s):// URL")
        if self.bank_auth == "mtls" and self.bank_client_cert_file is None:
            raise ValueError("bank_auth = mtls needs bank_client_cert_file (and its key)")
        if self.bank_auth == "client_credentials" and not (
            self.bank_token_url and self.bank_client_id and self.bank_client_secret
        ):
            raise ValueError(
                "bank_auth = client_credentials needs bank_token_url, bank_client_id and "
                "bank_client_secret"
            )
        if self.bank_auth != "none" and not self.bank_url.startswith("https://"):
            raise ValueError(f"bank_auth = {self.bank_auth} needs an https:// bank_url")
        if self.bank_auth == "none" and not _loopback_url(self.bank_url):
            raise ValueError("bank_auth = none is for a backend on the loopback only (the demo)")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer is None:
            return self
        if not self.oidc_issuer.startswith("https://") and not _loopback_http(self.oidc_issuer):
            raise ValueError("oidc_issuer must be an https:// URL (OIDC Core §3.1.2.1)")
        if not self.oidc_client_id:
            raise ValueError("oidc_issuer needs oidc_client_id")
        if self.oidc_client_auth == "private_key_jwt":
            if self.oidc_private_key_file is None:
                raise ValueError("oidc_client_auth private_key_jwt needs oidc_private_key_file")
        elif not self.oidc_client_secret:
            raise ValueError(f"oidc_client_auth {self.oidc_client_auth} needs oidc_client_secret")
        if "openid" not in self.oidc_scopes:
            raise ValueError("oidc_scopes must contain openid (OIDC Core §3.1.2.1)")
        if not (self.oidc_accepted_acr or self.oidc_acr_values):
            raise ValueError(
                "oidc_issuer needs oidc_acr_values or oidc_accepted_acr: the acr "
                "values that are strong customer authentication"
            )
        return self

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def resolved_oidc_accepted_acr(self) -> frozenset[str]:
        return frozenset(self.oidc_accepted_acr or self.oidc_acr_values)

    @model_validator(mode="after")
    def _sca_http_has_secret(self) -> Settings:
        if self.sca_http_url is not None:
            if not self.sca_http_url.startswith(("https://", "http://")):
                raise ValueError("sca_http_url must be an http(s):// URL")
            if self.sca_http_secret is None or len(self.sca_http_secret) < 32:
                raise ValueError("sca_http_url needs sca_http_secret of at least 32 characters")
        return self

    @model_validator(mode="after")
    def _revocation_policy_is_consistent(self) -> Settings:
        if self.revocation_policy == "grace" and self.revocation_grace_seconds == 0:
            raise ValueError("revocation_policy = grace needs revocation_grace_seconds > 0")
        if self.revocation_policy == "fail-closed" and self.revocation_grace_seconds:
            raise ValueError(
                "revocation_grace_seconds is set but revocation_policy is fail-closed: "
                "set revocation_policy = grace to use it"
            )
        return self

    @property
    def revocation_grace(self) -> timedelta:
        """The grace the validator applies past nextUpdate (zero when failing closed)."""
        if self.revocation_policy == "grace":
            return timedelta(seconds=self.revocation_grace_seconds)
        return timedelta(0)

    @model_validator(mode="after")
    def _threads_have_connections(self) -> Settings:
        # A thread that cannot get a pooled connection would hold its slot while it waits.
        if self.db_threads > 2 * self.db_pool_size:
            raise ValueError(
                f"db_threads ({self.db_threads}) must not exceed 2 × db_pool_size "
                f"({2 * self.db_pool_size}): each engine has db_pool_size connections plus as "
                "many overflow"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # --- derived paths -----------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stetgate.db').resolve()}"

    @property
    def resolved_issuer(self) -> str:
        if self.issuer:
            return self.issuer.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::1") else self.host  # noqa: S104
        return f"https://{host}:{self.port}"

    @property
    def server_cert_path(self) -> Path:
        return self.tls_cert_file or self.data_dir / "server.pem"

    @property
    def server_key_path(self) -> Path:
        return self.tls_key_file or self.data_dir / "server.key"

    @property
    def trust_path(self) -> Path:
        return self.trust_dir or self.data_dir / "trust"

    @property
    def crl_path(self) -> Path:
        return self.crl_dir or self.data_dir / "crl"


def _loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_http(url: str) -> bool:
    """Plain HTTP is allowed for an OP on the loopback interface only (tests, a local OP)."""
    return url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``STETGATE_CONFIG`` (a TOML file with top-level keys named like the fields)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("STETGATE_CONFIG")
        self._values: dict[str, Any] = {}
        if path:
            with open(path, "rb") as handle:
                self._values = tomllib.load(handle)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def load_settings(**overrides: Any) -> Settings:
    """Build settings; ``None`` overrides (unset CLI flags) are dropped so env/TOML still apply."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
