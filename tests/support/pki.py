"""Session-wide test PKI: the stetgate test QTSP plus an unrelated "foreign" CA.

Certificates are issued with `stetgate.eidas.qtsp` — the same code the sandbox and operators
use — so integration tests run on real ETSI TS 119 495 profiles. CRLs are published with a
long validity so tests may move the clock by months (refresh after 90 days) without the CRL
going stale; `revoke` republishes at once.

The QTSP is shared by the whole session, so it keeps its own clock, `TestPki.clock`: the system
clock (moved with everything else in the date-shifted CI run). Banks' frozen clocks start from
it; a certificate meant to be expired *for a bank* is dated from that bank's clock.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from stetgate.clock import Clock, SystemClock
from stetgate.eidas import qtsp

CRL_VALIDITY = timedelta(days=400)


@dataclass(frozen=True)
class TppCerts:
    """One TPP's certificate set on disk."""

    org_id: str
    directory: Path
    qwac_pem: Path
    qwac_key: Path
    qsealc_pem: Path
    qsealc_key: Path

    @property
    def qwac(self) -> tuple[str, str]:
        return (str(self.qwac_pem), str(self.qwac_key))


class TestPki:
    __test__ = False  # not a test class

    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = root
        self.clock: Clock = clock or SystemClock()
        self.data_dir = root / "qtsp"
        self.foreign_dir = root / "foreign"
        self.crl_base_url = "https://127.0.0.1/qtsp/crl"
        now = self.clock.now()
        qtsp.init_qtsp(self.data_dir, ["localhost", "127.0.0.1"], self.crl_base_url, now=now)
        qtsp.issue_foreign_ca(self.foreign_dir, now=now)
        self.publish_crl()
        self._issued: dict[tuple[Any, ...], TppCerts] = {}
        self._counter = 0

    @property
    def ca_pem(self) -> Path:
        return self.data_dir / "ca.pem"

    @property
    def trust_dir(self) -> Path:
        return self.data_dir / "trust"

    @property
    def crl_dir(self) -> Path:
        return self.data_dir / "crl"

    @property
    def server_pem(self) -> Path:
        return self.data_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.data_dir / "server.key"

    def publish_crl(self) -> None:
        """thisUpdate an hour back, so banks whose frozen clock started a little earlier in the
        test still accept the CRL (a CRL from the future is not yet valid)."""
        qtsp.publish_crl(
            self.data_dir, now=self.clock.now() - timedelta(hours=1), validity=CRL_VALIDITY
        )

    def issue(
        self,
        org_id: str = "PSDFR-ACPR-12345",
        roles: tuple[str, ...] = ("AISP", "CBPII"),
        name: str | None = None,
        *,
        fresh: bool = False,
        foreign: bool = False,
        **knobs: Any,
    ) -> TppCerts:
        """Issue (or reuse) a TPP certificate set. `fresh=True` always issues a new one —
        use it for anything the test will revoke. `knobs` go to `qtsp.issue_tpp`."""
        key = (org_id, tuple(sorted(roles)), name, foreign, tuple(sorted(knobs.items())))
        if not fresh and not knobs and key in self._issued:
            return self._issued[key]
        self._counter += 1
        out = self.root / "tpps" / f"{org_id}-{self._counter}"
        qtsp.issue_tpp(
            self.foreign_dir if foreign else self.data_dir,
            org_id,
            name or f"TPP {org_id}",
            list(roles),
            out,
            **{"now": self.clock.now(), **knobs},
        )
        certs = TppCerts(
            org_id, out, out / "qwac.pem", out / "qwac.key", out / "qsealc.pem", out / "qsealc.key"
        )
        if not fresh and not knobs:
            self._issued[key] = certs
        return certs

    def revoke(self, cert_pem: Path) -> None:
        qtsp.revoke(self.data_dir, cert_pem, now=self.clock.now() - timedelta(hours=1))
        self.publish_crl()

    def client_ssl_context(
        self, tpp: TppCerts | None = None, cert: tuple[Path, Path] | None = None
    ) -> ssl.SSLContext:
        """What a TPP's HTTP client uses: trusts the bank's server CA, presents the QWAC."""
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        if tpp is not None:
            ctx.load_cert_chain(str(tpp.qwac_pem), str(tpp.qwac_key))
        elif cert is not None:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        return ctx
