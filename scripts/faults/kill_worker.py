"""``kill -9`` a worker in the middle of a refresh load, then check nothing was lost.

``stetgate serve --workers 2`` on PostgreSQL (a database of its own on ``--pg-admin-url``'s
server, dropped afterwards) under the refresh load of `refresh_load` for ``--seconds``; at
``--kill-at`` one worker gets SIGKILL. uvicorn's supervisor starts a new one; the load's
connections on the dead worker break and reconnect. Afterwards: no pair lost or duplicated,
one active pair per (PSU, organization, role), every acknowledged refresh durable and audited
(`refresh_load.check_pairs`), and service resumed by itself (the last seconds at the rate of
before the kill, without a failure). Prints the per-second timeline; exits 1 on any failure.

    .venv/bin/python scripts/faults/kill_worker.py [--seconds 20] [--kill-at 8] [--pairs 64]

Not run in CI (it kills processes and needs the box): docs/security.md#faults-and-fuzzing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from refresh_load import (
    check_pairs,
    create_pg_database,
    drop_pg_database,
    every_worker_accepts,
    outage_seconds,
    recovery,
    run_refresh_load,
    running_bank,
    server_log_lines,
    timeline_lines,
    tls_context,
)

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--kill-at", type=float, default=8)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = parser.parse_args()
    name, url = create_pg_database(args.pg_admin_url)
    fault: dict[str, float] = {}
    try:
        with running_bank(url, args.pairs) as bank:
            before = sorted(bank.workers)

            def kill(start: float) -> None:
                time.sleep(max(0.0, start + args.kill_at - time.time()))
                victim = before[0]
                fault["at"] = time.time()
                os.kill(victim, signal.SIGKILL)
                deadline = time.time() + 30
                while time.time() < deadline:
                    now = sorted(bank.workers)
                    if len(now) == len(before) and victim not in now:
                        fault["replaced"] = time.time()
                        break
                    time.sleep(0.02)

            load = run_refresh_load(bank, args.seconds, processes=args.processes, during=kill)
            check = check_pairs(bank, load)
            both_serve = every_worker_accepts(
                bank.process.pid, bank.port, len(before), tls_context(bank.data_dir)
            )
            logs = server_log_lines(bank, "Exception in ASGI application", "Traceback")
    finally:
        drop_pg_database(args.pg_admin_url, name)
    kill_second = int(fault["at"] - load.started_at)
    print("\n".join(timeline_lines(load, {kill_second: "kill -9 worker"})))
    failures, last_failure = outage_seconds(load, fault["at"])
    replaced = fault.get("replaced", float("nan")) - fault["at"]
    resumed = recovery(load, kill_second, args.seconds)
    print(f"statuses: {dict(load.statuses())}")
    print(f"worker killed at {kill_second} s; replaced after {replaced:.2f} s")
    print(f"failed exchanges after the kill: {failures}; last one {last_failure:.2f} s after it")
    print("\n".join(resumed.lines()))
    print(f"new connections reach every worker, the new one included: {both_serve}")
    print(f"server log: {logs}")
    print("\n".join(check.lines()))
    ok = check.ok and resumed.resumed and both_serve and not any(logs.values())
    print("kill_worker: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
