"""The objects one app instance shares between requests, built once by `create_app`.

Handlers reach them through ``request.app.state.services``; nothing is a module-level global,
so tests build as many independent apps (databases, clocks, trust stores, banks) as they need.
The bank's own systems come in here as typed ports (`stetgate.bank`): its core banking
(`BankBackend`), its customer directory (`PsuDirectory`) and its SCA methods (`ScaMethod`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.requests import Request

from stetgate.bank.backend import BankBackend
from stetgate.bank.psus import PsuDirectory
from stetgate.bank.sca import ScaMethod
from stetgate.clock import Clock
from stetgate.eidas.revocation_fetcher import RevocationFetcher
from stetgate.keys import InstanceKeys
from stetgate.serving.blocking import BlockingCalls
from stetgate.serving.tpp_identity import TppIdentity
from stetgate.settings import Settings
from stetgate.statistics.recorder import StatisticsRecorder


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    engine: Engine
    """Read-write transactions (``BEGIN IMMEDIATE`` on SQLite)."""
    read_engine: Engine
    """Single-statement reads on the hot paths (`stetgate.store.reading`)."""
    keys: InstanceKeys
    tpp_identity: TppIdentity
    issuer: str
    bank: BankBackend
    psus: PsuDirectory
    sca_methods: tuple[ScaMethod, ...]
    password_checks: BlockingCalls
    """The worker's ``password_check_concurrency`` threads for password verification. A pool
    of its own, not just a limit: glibc keeps a freed argon2id block (19 MiB) in the heap of
    the thread that used it, so checks spread over many threads grew workers by 19 MiB per
    thread (measured 177–197 MiB during the cinematic); on two threads the blocks are reused,
    with no page faults to refill them (`stetgate.serving.heap`)."""
    blocking: BlockingCalls
    """Where handlers run database and bank-backend calls: off the event loop, bounded
    (`stetgate.serving.blocking`)."""
    revocation_fetcher: RevocationFetcher | None = None
    """Keeps the CRL folder fresh (`stetgate.eidas.revocation_fetcher`); None when the
    setting ``revocation_fetch`` is off."""
    statistics: StatisticsRecorder | None = None
    """The worker's PSD2 statistics counts (`stetgate.statistics`); None when
    ``statistics_enabled`` is off."""

    def close(self) -> None:
        """Release the databases and threads (tests and the sandbox build many apps)."""
        if self.statistics is not None:
            self.statistics.close()  # the last counts, while the engine is still there
        self.blocking.close()
        self.password_checks.close()
        close_bank = getattr(self.bank, "close", None)  # an adapter holding connections
        if callable(close_bank):
            close_bank()
        for method in self.sca_methods:  # a method with its own HTTP client (stetgate.sca_http)
            close = getattr(method, "close", None)
            if callable(close):
                close()
        self.engine.dispose()
        if self.revocation_fetcher is not None:
            self.revocation_fetcher.close()
        self.tpp_identity.validator.close()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
