"""Fuzz every endpoint of a real bank and fail on any 5xx or contract violation.

Starts a bank (`create_app` under uvicorn, real TLS with test-QTSP certificates, the demo bank
seeded, a Go-Live TPP with QWAC and QSealC) on a fresh SQLite file or PostgreSQL database, then
sends about ``--requests`` requests (`tests.support.fuzzing`): half schemathesis cases over the
STET resource API (positive and negative, every one signed with the QSealC and carrying a real
token), half hypothesis-generated forms and bodies over ``/token``, ``/revoke``,
``/introspect``, ``/authorize``, the PSU pages' posts and the register API. Prints a table by
target and exits 1 when any answer was a 5xx or broke its contract.

    .venv/bin/python scripts/fuzz.py [--requests 10000] [--seed 0] [--database sqlite|postgresql]

CI runs a short version: tests/security/test_fuzz.py. Results: docs/security.md#faults-and-fuzzing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers' package

from sqlalchemy import create_engine, text

from stetgate.store.db import upgrade
from tests.integration.psd2_support import build_world
from tests.support.fuzzing import fuzz_world
from tests.support.pki import TestPki

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="stetgate-fuzz-") as folder:
        directory = Path(folder)
        dropped: str | None = None
        if args.database == "sqlite":
            url = f"sqlite:///{directory / 'stetgate.db'}"
        else:
            dropped = f"stetgate_fuzz_{uuid.uuid4().hex[:10]}"
            admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{dropped}"'))
            url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{dropped}"
        try:
            upgrade(url)
            pki = TestPki(directory / "pki")
            worlds = build_world(None, pki, directory, args.database, url=url)  # type: ignore[arg-type]
            world = next(worlds)
            started = time.monotonic()
            try:
                report = fuzz_world(world, args.requests, args.seed)
            finally:
                worlds.close()
            seconds = time.monotonic() - started
        finally:
            if dropped is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)'))
                admin.dispose()
    print(f"fuzz: {report.total} requests in {seconds:.0f} s on {args.database}, seed {args.seed}")
    print("\n".join(report.lines()))
    if report.failed:
        print("fuzz: FAILED (5xx or contract violations above)")
        return 1
    print("fuzz: no 5xx, no contract violation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
