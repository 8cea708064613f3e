"""Signed ``GET /accounts`` throughput over mutual TLS with keep-alive (product targets on the
2-core reference box, 2 workers: ≥ 3,000 requests per second, and ≥ 70 % of that with a 1 ms
database round trip).

What one request costs the bank: QWAC from the TLS session (validation cached), the access
token lookup (one statement: grant + client + QSealC references + consent), the RFC 8705
binding check, the draft-cavage RSA-2048 signature verification with the registered QSealC,
the demo bank's accounts and balances, and the HAL JSON response. The PSU is present
(``PSU-IP-Address``), as for any interactive use; unattended calls are capped at 4 a day.

Set-up in a temporary folder (`scenarios.prepare_accounts`): test QTSP, TPP certificates,
migrated database, demo bank (seed 1), a Go-Live client, an access token bound to the QWAC
and a consent covering the balances and transactions of every account of the PSU. Then
``stetgate serve --workers N`` runs as a real process and the keep-alive load generator
(`harness`) replays ``--presigned`` pre-signed requests — RSA signing costs ~1 ms, so it is
done before the clock starts; every request has its own ``X-Request-ID``.

    .venv/bin/python benchmarks/accounts.py
        [--database sqlite|postgresql|postgresql-proxy|both|all]
        [--workers 2] [--connections 64] [--seconds 10] [--presigned 2000] [--rtt-ms 1]

Prints requests per second, latency percentiles, status counts, CPU per request (server, load
generator, PostgreSQL, proxy) and the RSS of each server process. The load generator shares
the machine's cores with the server, so the figure is a floor.
"""

from scenarios import single_scenario_main

if __name__ == "__main__":
    single_scenario_main("accounts", __doc__, database="sqlite", presigned=2000)
