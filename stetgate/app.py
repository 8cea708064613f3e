"""`create_app(settings)`: the one place where stetgate is wired together.

Each domain package exposes ``routes(...)`` (and, where it has one, an error renderer); this
module builds the shared services once and composes them explicitly — no import-time side
effects, no registration magic. `app_from_environment` is the factory uvicorn workers import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from stetgate import diagnostics
from stetgate.bank.backend import BankBackend
from stetgate.bank.psus import PsuDirectory
from stetgate.bank.sca import ScaMethod, ScaServiceUnavailable
from stetgate.bank_http import HttpBank, http_bank
from stetgate.clock import Clock, SystemClock
from stetgate.demo import phone_pages as demo_pages
from stetgate.demo.bank import DemoBank
from stetgate.demo.psu_directory import DatabasePsuDirectory
from stetgate.eidas.revocation_fetch import FetchLimits
from stetgate.eidas.revocation_fetcher import FetchSchedule, RevocationFetcher
from stetgate.eidas.trust import TrustFolder
from stetgate.eidas.validation import CertificateValidator
from stetgate.keys import InstanceKeys, load_master_key
from stetgate.oauth import authorize as oauth_authorize
from stetgate.oauth import endpoints as oauth_endpoints
from stetgate.oauth.introspect import INTROSPECT_PATH
from stetgate.oauth.revoke import REVOKE_PATH
from stetgate.oauth.token_endpoint import TOKEN_PATH
from stetgate.oidc_login.pages import OidcLogin
from stetgate.oidc_login.provider import OpenIdProvider
from stetgate.psd2 import routes as psd2_api
from stetgate.psu import pages as psu_pages
from stetgate.psu.authorize_frontend import PsuAuthorizationFrontend
from stetgate.psu.sca import TotpMethod, default_sca_methods
from stetgate.psu.theme import load_theme
from stetgate.psu.unavailable import unavailable_page
from stetgate.psu.visits import STATIC_PATH as PSU_STATIC_PATH
from stetgate.registry import register as register_api
from stetgate.registry import registration_token
from stetgate.registry.registrations import REGISTER_PATH
from stetgate.sca_http import callback as sca_http_callback
from stetgate.sca_http.method import HttpAppMethod
from stetgate.services import Services, services_of
from stetgate.serving.access import AccessObserver
from stetgate.serving.blocking import BlockingCalls
from stetgate.serving.client_cert import ClientCertificateSource
from stetgate.serving.database_outage import log_unavailable
from stetgate.serving.heap import settle_after_start, sweep_periodically
from stetgate.serving.metrics_listener import forget_process_at_exit
from stetgate.serving.middleware import BodySizeLimit, SecurityHeaders
from stetgate.serving.tpp_identity import TppIdentity
from stetgate.settings import Settings, load_settings
from stetgate.statistics import families
from stetgate.statistics.families import EndpointFamilies, PathRule
from stetgate.statistics.recorder import NO_BACKEND_CHECK, StatisticsRecorder
from stetgate.store.db import DatabaseUnavailable, Timeouts, make_engine, require_migrated
from stetgate.store.reading import read_only_engine

log = logging.getLogger(__name__)


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bank: BankBackend | None = None,
    psus: PsuDirectory | None = None,
    sca_methods: Sequence[ScaMethod] | None = None,
) -> Services:
    """The shared objects of one app; a port left as None gets stetgate's built-in adapter
    (the demo bank over this database — or over HTTP at ``bank_url`` —, the local PSU
    directory, TOTP and app confirmation — the latter through the bank's SCA service when
    ``sca_http_url`` is set)."""
    timeouts = Timeouts(
        statement_ms=settings.db_statement_timeout_ms, lock_ms=settings.db_lock_timeout_ms
    )
    engine = make_engine(settings.resolved_database_url, settings.db_pool_size, timeouts)
    require_migrated(engine)
    read_engine = read_only_engine(engine, settings.db_pool_size, timeouts)
    clock = clock or SystemClock()
    validator = CertificateValidator.from_folders(
        settings.trust_path,
        settings.crl_path,
        poll_seconds=settings.crl_poll_seconds,
        grace=settings.revocation_grace,
    )
    fetcher = revocation_fetcher(settings, validator, clock)
    source = ClientCertificateSource(
        settings.trusted_proxies, settings.client_cert_header, settings.client_cert_header_format
    )
    keys = InstanceKeys.from_master(load_master_key(settings.secret_key, settings.data_dir))
    if sca_methods is None and settings.sca_http_url is not None:
        sca_methods = (TotpMethod(), HttpAppMethod(engine, settings, clock))
    if bank is None:
        # Core banking over HTTP when configured (docs/bank-integration.md), else in-process.
        bank = http_bank(settings) if settings.bank_url else DemoBank(read_engine)
    if psus is None:
        psus = DatabasePsuDirectory(
            engine,
            keys.totp_fernet,
            max_failed_attempts=settings.max_failed_auth_attempts,
            block_seconds=settings.psu_block_seconds,
        )
    blocking = BlockingCalls(settings.db_threads)
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        read_engine=read_engine,
        keys=keys,
        tpp_identity=TppIdentity(source, validator),
        issuer=settings.resolved_issuer,
        bank=bank,
        psus=psus,
        sca_methods=tuple(sca_methods if sca_methods is not None else default_sca_methods()),
        password_checks=BlockingCalls(
            settings.password_check_concurrency, name="stetgate-password"
        ),
        blocking=blocking,
        revocation_fetcher=fetcher,
        statistics=_statistics_recorder(settings, engine, clock, blocking, bank),
    )


def endpoint_families() -> EndpointFamilies:
    """Which paths each family of the PSD2 statistics covers (`stetgate.statistics.families`):
    the PSU's journey at the bank (``/authorize`` and the PSU pages but their static files),
    the token endpoint with revocation and introspection, the AISP and the CBPII resources of
    the STET API. Metadata, the register API, health checks and the API's OpenAPI document are
    not part of the published statistics."""
    api = psd2_api.BASE_PATH
    return EndpointFamilies(
        [
            PathRule(PSU_STATIC_PATH, None),
            PathRule(oauth_authorize.AUTHORIZE_PATH, families.AUTHORIZATION),
            PathRule("/psu", families.AUTHORIZATION),
            PathRule(TOKEN_PATH, families.TOKEN),
            PathRule(REVOKE_PATH, families.TOKEN),
            PathRule(INTROSPECT_PATH, families.TOKEN),
            PathRule(f"{api}/accounts", families.AISP),
            PathRule(f"{api}/consents", families.AISP),
            PathRule(f"{api}/end-user-identity", families.AISP),
            PathRule(f"{api}/trusted-beneficiaries", families.AISP),
            PathRule(f"{api}/funds-confirmations", families.CBPII),
        ]
    )


def _statistics_recorder(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    blocking: BlockingCalls,
    bank: BankBackend,
) -> StatisticsRecorder | None:
    if not settings.statistics_enabled:
        return None
    backend_available = (
        (lambda: bank.breaker.state != "open") if isinstance(bank, HttpBank) else NO_BACKEND_CHECK
    )
    return StatisticsRecorder(
        engine,
        clock,
        blocking,
        endpoint_families(),
        flush_seconds=settings.statistics_flush_seconds,
        probe_seconds=settings.statistics_probe_seconds,
        backend_available=backend_available,
    )


def revocation_fetcher(
    settings: Settings, validator: CertificateValidator, clock: Clock
) -> RevocationFetcher | None:
    """The worker's revocation fetcher thread, started; it fetches only while it holds the
    instance's lock, so with ``--workers N`` one fetches and N-1 read
    (docs/operations.md#revocation-data)."""
    if not settings.revocation_fetch or not isinstance(validator.trust, TrustFolder):
        return None
    fetcher = RevocationFetcher(
        settings.crl_path,
        validator.trust,
        clock,
        FetchSchedule(
            refresh=timedelta(seconds=settings.crl_refresh_seconds),
            margin=timedelta(seconds=settings.crl_refresh_margin_seconds),
            retry=timedelta(seconds=settings.revocation_retry_seconds),
        ),
        FetchLimits(
            timeout_seconds=settings.revocation_fetch_timeout_seconds,
            max_bytes=settings.revocation_fetch_max_bytes,
        ),
        poll_seconds=max(settings.crl_poll_seconds, 0.1),
        verify=str(settings.revocation_fetch_ca_file or "") or True,
    )
    validator.on_certificate_seen = fetcher.want
    validator.fetch_missing = fetcher.fetch_for
    fetcher.start()
    return fetcher


class _NoDelegatedLogin:
    """No ``oidc_issuer``: the PSU pages' own identification and SCA screens."""

    def routes(self) -> list[BaseRoute]:
        return []


async def _published_crl(request: Request) -> Response:
    """The test QTSP's CRL, at the URL written in its certificates' CRL distribution point."""
    name = request.path_params["name"]
    crl_dir = services_of(request).settings.crl_path
    path = (crl_dir / name).resolve()
    if path.parent != crl_dir.resolve() or not name.endswith(".crl") or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, media_type="application/pkix-crl")


async def _sca_service_unavailable(request: Request, exc: Exception) -> Response:
    """The bank's SCA service did not answer (`stetgate.sca_http`): nothing of the journey was
    written, the PSU gets the 503 page and may try again."""
    log.warning("SCA service unavailable: %s", exc)
    return unavailable_page(request)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """A database timeout or outage that no endpoint answered itself (the OAuth, register and
    STET endpoints render theirs in their own error format): the PSU pages' 503 page, and the
    request's one log line."""
    assert isinstance(exc, DatabaseUnavailable)
    log_unavailable(request.scope, exc)
    return unavailable_page(request)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bank: BankBackend | None = None,
    psus: PsuDirectory | None = None,
    sca_methods: Sequence[ScaMethod] | None = None,
) -> Starlette:
    """Build the ASGI app for `settings`.

    The seams, each a typed port of `stetgate.bank`: ``bank`` (core banking: accounts,
    balances, transactions, beneficiaries, identity, funds), ``psus`` (identify, check
    credentials, count failures, block) and ``sca_methods`` (in the order the PSU is offered
    them); None means stetgate's built-in adapter, what `stetgate serve` and the sandbox run.
    ``clock`` is injected by tests. A theme folder (``theme_dir``) that does not pass its
    checks raises `stetgate.psu.theme.ThemeError` naming the file, before anything is opened.
    """
    theme = load_theme(settings.theme_dir, settings.default_language)
    services = build_services(settings, clock=clock, bank=bank, psus=psus, sca_methods=sca_methods)
    # Delegated PSU login (docs/operations.md#delegated-psu-login-openid-connect): the
    # bank's OpenID Provider replaces the password and SCA screens when oidc_issuer is set.
    oidc_login = (
        OidcLogin(OpenIdProvider(settings)) if settings.oidc_enabled else _NoDelegatedLogin()
    )
    grant_handlers = oauth_endpoints.grant_handlers(
        services
    )  # token endpoint: grant_type → handler
    grant_handlers.update(registration_token.grant_handlers())  # client_credentials
    routes: list[BaseRoute] = [
        # The two hot paths first (routes are tried in order, a regular expression each):
        *psd2_api.routes(services),  # the resource API, one prefix match
        *oauth_endpoints.routes(grant_handlers),  # the token endpoint first among these
        *diagnostics.routes(),
        Route("/qtsp/crl/{name}", _published_crl, methods=["GET"]),
        # --- domain routes (one line per domain) ---
        *register_api.routes(),
        *oauth_authorize.routes(PsuAuthorizationFrontend()),
        *oidc_login.routes(),  # before the PSU pages: /psu/login goes to the bank's OP
        *_sca_callback_routes(settings),
        *psu_pages.routes(),
        *demo_pages.routes(settings),
    ]
    recorder = services.statistics

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """Each worker probes and flushes its statistics while it serves, and writes its last
        counts when it stops (`stetgate.statistics.recorder`); it sweeps its reference cycles
        on a timer (`stetgate.serving.heap.sweep_periodically`)."""
        if recorder is not None:
            recorder.start()
        sweeper = (
            asyncio.get_running_loop().create_task(sweep_periodically(settings.gc_sweep_seconds))
            if settings.gc_sweep_seconds > 0
            else None
        )
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            if recorder is not None:
                await recorder.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            DatabaseUnavailable: _database_unavailable,
            ScaServiceUnavailable: _sca_service_unavailable,
        },
        middleware=[
            # Outermost: times the whole answer, sees the status of the others' answers too;
            # access line, request metrics and the PSD2 statistics in one middleware.
            Middleware(AccessObserver, log_requests=settings.access_log, statistics=recorder),
            Middleware(SecurityHeaders),
            Middleware(
                BodySizeLimit,
                max_bytes=settings.max_body_bytes,
                # Each API answers a body over the limit in its own error format.
                answers=[
                    (psd2_api.BASE_PATH, psd2_api.too_large_answer(services)),
                    (REGISTER_PATH, register_api.too_large_answer),
                ],
            ),
        ],
    )
    app.state.services = services
    app.state.theme = theme
    app.state.oidc_login = oidc_login if isinstance(oidc_login, OidcLogin) else None
    return app


def _sca_callback_routes(settings: Settings) -> list[BaseRoute]:
    """``POST /psu/sca/callback`` only where the bank's SCA service answers by callback."""
    if settings.sca_http_url is None or settings.sca_http_mode != "callback":
        return []
    return sca_http_callback.routes()


def app_from_environment() -> Starlette:
    """Factory for uvicorn workers: settings come from STETGATE_* variables set by `serve`.
    The worker's start-up heap is then frozen out of the collector's way
    (`stetgate.serving.heap`)."""
    app = create_app(load_settings())
    forget_process_at_exit()
    settle_after_start()
    return app


def data_dir_default() -> Path:
    return load_settings().data_dir
