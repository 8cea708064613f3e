"""Cost of parsing and validating an eIDAS QWAC (chain + CRL, pyhanko-certvalidator), in µs.

Run: .venv/bin/python benchmarks/certificate_validation.py
"""

from __future__ import annotations

import tempfile
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from stetgate.eidas import CertificateValidator, parse_certificate
from stetgate.eidas.parse import parse_certificate_uncached
from stetgate.eidas.qtsp import init_qtsp, issue_tpp


def _us(action: Callable[[], object], n: int) -> str:
    return f"{timeit.timeit(action, number=n) / n * 1e6:8.1f} µs"


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    now = datetime.now(UTC)
    init_qtsp(folder, ["localhost"], "https://127.0.0.1:8443/qtsp/crl")
    tpp = issue_tpp(folder, "PSDFR-ACPR-12345", "TPP", {"AISP", "CBPII"}, folder / "tpp")
    pem = tpp.qwac_pem.read_bytes()
    cert = parse_certificate(pem)
    validator = CertificateValidator.from_folders(folder / "trust", folder / "crl")
    validator.validate(cert, "qwac", now)

    def uncached() -> None:
        validator.clear_cache()
        validator.validate(cert, "qwac", now)

    print("parse, uncached (PEM)  ", _us(lambda: parse_certificate_uncached(pem), 3000))
    print("parse, LRU hit         ", _us(lambda: parse_certificate(pem), 100_000))
    print("validate, cached       ", _us(lambda: validator.validate(cert, "qwac", now), 100_000))
    print("validate, uncached     ", _us(uncached, 300))
    validator.close()


if __name__ == "__main__":
    main()
