"""Every end-to-end scenario on every database, in one command.

    .venv/bin/python benchmarks/run_all.py --report docs/performance.md
    .venv/bin/python benchmarks/run_all.py --seconds 2 --warmup 1 --connections 16 \
        --workers 2 --databases sqlite,postgresql-proxy --json /tmp/smoke.json   # CI smoke

For each database (``sqlite``, ``postgresql``, ``postgresql-proxy``: PostgreSQL behind
`latency_proxy` adding ``--rtt-ms``, 1 ms by default) and each scenario of `scenarios`
(refresh, code exchange, new connection + refresh with and without TLS session resumption,
whole cinematic, signed ``GET /accounts``, introspection), it runs: the highest ``--workers``
at each of ``--connections`` (p99 at 64 and 256), then every other worker count at the
lowest connection count (throughput vs workers). Each run is a fresh database, data folder
and ``stetgate serve`` process (`harness`). With the proxy among the databases it also
measures the proxy's own cost: ``SELECT 1`` round trips direct / 0 ms proxy / configured
delay, and the refresh and accounts scenarios through a 0 ms proxy next to direct.

Results are printed as they come and written as JSON (``--json``; with ``--report`` next to
the report: ``docs/performance/results.json``). ``--report`` also writes the Markdown report
(machine, noise, proxy cost, results table, remote-database ratios) and PNG charts in
``docs/performance/`` (matplotlib, Agg): throughput vs connections, latency percentiles,
throughput vs workers. ``--from-json`` re-renders a report from saved results.

The load generator, PostgreSQL and whatever else runs on the box share its cores with the
server: every result carries the CPU split (server, load generator, PostgreSQL, proxy, from
/proc) and how many cores other processes took during the window, so a noisy figure says so.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sqlite3
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import DATABASES, database_label, print_result
from latency_proxy import measure as measure_proxy
from scenarios import (
    SCENARIOS,
    Options,
    add_common_arguments,
    result_title,
    run_scenario,
    server_env,
)

PROXY_COST_SCENARIOS = ("refresh", "accounts")


def machine_description(pg_admin_url: str, databases: list[str]) -> dict[str, Any]:
    def first(path: str, prefix: str) -> str:
        try:
            with open(path) as handle:
                for line in handle:
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    versions = {}
    for package in ("uvicorn", "sqlalchemy", "psycopg", "uvloop", "httptools", "starlette"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    description = {
        "cores": os.cpu_count(),
        "cpu_model": first("/proc/cpuinfo", "model name"),
        "ram": first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "sqlite": sqlite3.sqlite_version,
        "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }
    if any(kind != "sqlite" for kind in databases):
        from sqlalchemy import create_engine, text

        engine = create_engine(pg_admin_url)
        with engine.connect() as conn:
            description["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
            description["synchronous_commit"] = conn.execute(
                text("SHOW synchronous_commit")
            ).scalar()
        engine.dispose()
    try:
        description["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        description["commit"] = "unknown"
    return description


def plan(
    scenarios: list[str], databases: list[str], workers: list[int], connections: list[int]
) -> list[tuple[str, str, int, int]]:
    """(database, scenario, workers, connections) in running order."""
    top = max(workers)
    runs = []
    for kind in databases:
        for name in scenarios:
            runs += [(kind, name, top, count) for count in connections]
            runs += [(kind, name, count, min(connections)) for count in workers if count != top]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_common_arguments(parser, sweep=True)
    parser.add_argument("--databases", default=",".join(DATABASES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--presigned", type=int, default=2000)
    parser.add_argument("--psus", type=int, default=3000)
    parser.add_argument("--code-rate", type=float, default=3000.0)
    parser.add_argument("--no-proxy-cost", action="store_true")
    parser.add_argument("--report", type=Path, help="write this Markdown report (and charts)")
    parser.add_argument("--json", type=Path, help="results file (default: next to the report)")
    parser.add_argument("--from-json", type=Path, help="render --report from saved results")
    parser.add_argument(
        "--replace-in",
        type=Path,
        help="run the selected runs and replace them in this results file (amending it)",
    )
    args = parser.parse_args()
    workers = [int(n) for n in args.workers.split(",")]
    connections = [int(n) for n in args.connections.split(",")]
    databases = args.databases.split(",")
    scenarios = args.scenarios.split(",")
    for kind in databases:
        if kind not in DATABASES:
            parser.error(f"unknown database {kind}: {', '.join(DATABASES)}")
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name}: {', '.join(SCENARIOS)}")
    json_path = args.json or (
        args.report.parent / args.report.stem / "results.json" if args.report else None
    )

    if args.from_json:
        document = json.loads(args.from_json.read_text())
    elif args.replace_in:
        document = json.loads(args.replace_in.read_text())
        fresh = dict(document, results=[], proxy_cost=None)
        run_everything(args, fresh, None, databases, scenarios, workers, connections)
        keys = {_key(r) for r in fresh["results"]}
        document["results"] = [
            fresh["results"][[_key(f) for f in fresh["results"]].index(_key(r))]
            if _key(r) in keys
            else r
            for r in document["results"]
        ] + [r for r in fresh["results"] if _key(r) not in {_key(o) for o in document["results"]}]
        document.setdefault("amendments", []).append(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "runs": len(fresh["results"]),
            }
        )
        json_path = args.json or args.replace_in
    else:
        document = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_description(args.pg_admin_url, databases),
            "rtt_ms": args.rtt_ms,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "results": [],
            "proxy_cost": None,
        }
        run_everything(args, document, json_path, databases, scenarios, workers, connections)
    if json_path is not None:
        save(document, json_path)
    if args.report:
        from report import write_report

        write_report(document, args.report)
        print(f"\nreport: {args.report}")
    failed = [
        f"{r['scenario']}/{r['database']}/w{r['workers']}/c{r['connections']}"
        for r in document["results"]
        if r["ok"] == 0 or r["non_2xx"]
    ]
    if failed:
        print(f"\nruns with no success or with non-2xx answers: {', '.join(failed)}")


def run_everything(
    args: argparse.Namespace,
    document: dict[str, Any],
    json_path: Path | None,
    databases: list[str],
    scenarios: list[str],
    workers: list[int],
    connections: list[int],
) -> None:
    extra_env = server_env(args.server_env)
    runs = plan(scenarios, databases, workers, connections)
    proxied = "postgresql-proxy" in databases and not args.no_proxy_cost and not args.replace_in
    if proxied:
        print("proxy cost: SELECT 1 round trips direct / 0 ms proxy / configured delay ...")
        document["proxy_cost"] = {
            "round_trips": measure_proxy(args.pg_admin_url, args.rtt_ms / 2, 2000)
        }
        zero = [
            ("postgresql-proxy-0", name, max(workers), min(connections))
            for name in PROXY_COST_SCENARIOS
            if name in scenarios
        ]
        runs += zero
    started = time.monotonic()
    for number, (kind, name, worker_count, connection_count) in enumerate(runs, 1):
        scenario = SCENARIOS[name]
        options = Options(
            connections=connection_count,
            client_processes=args.client_processes,
            seconds=args.seconds,
            warmup=args.warmup,
            presigned=args.presigned,
            code_rate=args.code_rate,
            psus=args.psus,
        )
        rtt = 0.0 if kind == "postgresql-proxy-0" else args.rtt_ms
        database_kind = "postgresql-proxy" if kind == "postgresql-proxy-0" else kind
        print(
            f"\n[{number}/{len(runs)}, {time.monotonic() - started:.0f} s] {name} on "
            f"{database_label(database_kind, rtt)}, {worker_count} worker(s), "
            f"{connection_count} connections",
            flush=True,
        )
        result = run_scenario(
            scenario,
            database_kind,
            worker_count,
            options,
            rtt_ms=rtt,
            pg_admin_url=args.pg_admin_url,
            server_env=extra_env,
            gc_probe=args.gc_probe,
        )
        if kind == "postgresql-proxy-0":
            result["database"] = kind
            document["proxy_cost"].setdefault("scenarios", []).append(result)
        else:
            document["results"].append(result)
        print_result(result_title(scenario, result), result, scenario.unit)
        if json_path is not None:
            save(document, json_path)


def _key(result: dict[str, Any]) -> tuple[str, str, int, int]:
    return (result["scenario"], result["database"], result["workers"], result["connections"])


def save(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
