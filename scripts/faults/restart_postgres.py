"""Restart PostgreSQL under a refresh load, then check nothing was lost and service resumed.

Starts a private PostgreSQL cluster of its own (``initdb`` in a temporary folder, its own port,
``fsync`` on: `tests.support.private_postgres`; the shared server is never touched), runs
``stetgate serve --workers 2`` on it under the refresh load of `refresh_load`, and at
``--restart-at`` restarts the cluster (``pg_ctl stop -m fast`` — every session gets SQLSTATE
57P01, as in a restart or failover — or ``-m immediate``, a crash that recovery replays; then
``pg_ctl start``). While it is down every refresh must be answered ``503
temporarily_unavailable`` with ``Retry-After`` (never a 500), with one log line each; once it
is back, service resumes by itself (the stale pooled connections are replaced before they fail
a request). Then the database checks of `refresh_load.check_pairs`. Exits 1 on any failure.

    .venv/bin/python scripts/faults/restart_postgres.py [--seconds 20] [--restart-at 8]
        [--mode fast|immediate] [--pairs 64]

Not run in CI: docs/security.md#faults-and-fuzzing.
"""

from __future__ import annotations

import argparse
import sys
import time

from refresh_load import (
    ROOT,
    check_pairs,
    outage_seconds,
    recovery,
    run_refresh_load,
    running_bank,
    server_log_lines,
    timeline_lines,
)

sys.path.insert(0, str(ROOT))
from tests.support.private_postgres import PrivatePostgres


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--restart-at", type=float, default=8)
    parser.add_argument("--mode", choices=["fast", "immediate"], default="fast")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    cluster = PrivatePostgres(durable=True)
    fault: dict[str, float] = {}
    try:
        cluster.start()
        url = cluster.create_database("stetgate")
        with running_bank(url, args.pairs) as bank:

            def restart(start: float) -> None:
                time.sleep(max(0.0, start + args.restart_at - time.time()))
                fault["at"] = time.time()
                cluster.stop(args.mode)
                fault["stopped"] = time.time()
                cluster.start()
                fault["started"] = time.time()

            load = run_refresh_load(bank, args.seconds, processes=args.processes, during=restart)
            check = check_pairs(bank, load)
            logs = server_log_lines(
                bank, "Exception in ASGI application", "Traceback", "database unavailable on"
            )
    finally:
        cluster.destroy()
    fault_second = int(fault["at"] - load.started_at)
    up_second = int(fault["started"] - load.started_at)
    print(
        "\n".join(
            timeline_lines(
                load, {fault_second: f"pg_ctl stop -m {args.mode}", up_second: "PostgreSQL up"}
            )
        )
    )
    statuses = load.statuses()
    failures, last_failure = outage_seconds(load, fault["at"])
    down = fault["started"] - fault["at"]
    after_up = max(0.0, load.failure_times[-1] - fault["started"]) if load.failure_times else 0.0
    resumed = recovery(load, fault_second, args.seconds)
    protocol = "503" not in load.samples or (
        "temporarily_unavailable" in load.samples["503"]
        and "retry-after: 1" in load.samples["503"].lower()
    )
    print(f"statuses: {dict(statuses)}")
    print(f"PostgreSQL down {down:.2f} s (stop took {fault['stopped'] - fault['at']:.2f} s)")
    print(
        f"failed exchanges: {failures}; the last {last_failure:.2f} s after the stop, "
        f"{after_up:.2f} s after PostgreSQL was up again"
    )
    print("\n".join(resumed.lines()))
    for status, sample in sorted(load.samples.items()):
        print(f"first {status} answer:\n  " + sample.replace("\r\n", "\n  "))
    print(f"server log: {logs} (503 answers: {statuses['503']})")
    print("\n".join(check.lines()))
    no_500 = not any(s.startswith("5") and s != "503" for s in statuses)
    one_line_each = logs["database unavailable on"] == statuses["503"]
    ok = (
        check.ok
        and resumed.resumed
        and protocol
        and no_500
        and one_line_each
        and not logs["Exception in ASGI application"]
        and not logs["Traceback"]
    )
    print("restart_postgres: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
