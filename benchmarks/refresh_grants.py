"""Refresh grants per second: ``POST /stet/psd2/oauth/token`` with ``grant_type=refresh_token``
over mutual TLS with keep-alive (product targets on the 2-core reference box, 2 workers:
≥ 10,000/s on SQLite, ≥ 6,000/s on PostgreSQL, ≥ 70 % of that with a 1 ms database round
trip; p99 < 50 ms at 64 connections, < 150 ms at 256).

What one request costs the bank: the RFC 6749 §3.2 form, the QWAC of the TLS session
(validation cached until the certificate or the CRL could change), and one statement that
checks every refresh rule, issues the new access token bound to the QWAC and writes the
``token_refreshed`` audit row (`stetgate.oauth.refresh_store`). Nothing is skipped for the
benchmark: the server is a real ``stetgate serve`` process with default settings.

Set-up in a temporary folder (`harness`): test QTSP, a TPP QWAC (AISP), migrated database
(SQLite file, or a fresh PostgreSQL database created next to ``--pg-admin-url`` and dropped
afterwards, optionally behind the latency proxy), a Go-Live client and one token pair per
connection. The load generator runs in ``--client-processes`` processes with keep-alive TLS
connections on uvloop; each connection sends its next refresh as soon as the previous answer
arrived. Responses are counted only inside the measuring window, after a warm-up.

    .venv/bin/python benchmarks/refresh_grants.py
        [--database sqlite|postgresql|postgresql-proxy|both|all]
        [--workers 2] [--connections 64] [--seconds 10] [--warmup 2] [--rtt-ms 1]
        [--client-processes 1] [--server-env STETGATE_DB_POOL_SIZE=16]

Prints grants per second, latency percentiles, status counts, RSS of each server process
(first/last/max sample of the window), CPU time per grant of the server, the load generator,
PostgreSQL (our backends and all) and the proxy (from /proc), and how busy the box was. The
load generator shares the cores with the server, so grants/s is a floor for the server alone
— and it drops when anything else runs on the box, while the CPU time per grant barely moves:
compare that figure when the box is shared. `run_all.py` runs every scenario.
"""

from scenarios import single_scenario_main

if __name__ == "__main__":
    single_scenario_main("refresh", __doc__, database="both")
