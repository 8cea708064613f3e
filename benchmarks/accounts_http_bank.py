"""Signed ``GET /accounts`` through `HttpBank` (core banking over HTTP) against the same
through the in-process demo bank (target: HTTP keeps ≥ 60 % of the in-process throughput).

Both runs are the ``accounts`` scenario of `scenarios` (mutual TLS, keep-alive, pre-signed
RSA-2048 requests, a consent covering every account so each request reads accounts *and*
balances — one backend call, ``GET /core-banking/v1/psus/{psu}/accounts?balancesFor=…``).
The HTTP run starts ``stetgate demo-bank serve --workers N`` on the same database (plain HTTP
on 127.0.0.1, ``bank_auth = none``) and the gateway with ``STETGATE_BANK_URL``. The demo-bank
service shares the two cores with the gateway and the load generator, so its CPU is reported
apart: on a real deployment it is the bank's machine that pays it.

    .venv/bin/python benchmarks/accounts_http_bank.py
        [--database sqlite|postgresql] [--workers 2] [--bank-workers 1]
        [--connections 64] [--seconds 10] [--presigned 2000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from harness import (
    PG_ADMIN_URL,
    cpu_seconds,
    database,
    database_label,
    free_port,
    prepare_bench,
    print_result,
    process_tree,
    run_load,
    start_server,
    summarize,
)
from latency_proxy import stop_process
from scenarios import ORG, Options, prepare_accounts


def start_bank_service(data_dir: Path, database_url: str | None, workers: int) -> tuple[Any, str]:
    port = free_port()
    env = dict(os.environ, STETGATE_DATA_DIR=str(data_dir))
    if database_url:
        env["STETGATE_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "stetgate.cli", "demo-bank", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log = data_dir / "demo-bank.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/core-banking/v1/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"demo-bank serve did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def run(
    kind: str, workers: int, options: Options, *, over_http: bool, bank_workers: int
) -> dict[str, Any]:
    with (
        database(kind, pg_admin_url=PG_ADMIN_URL) as db,
        tempfile.TemporaryDirectory(prefix="stetgate-accounts-http-") as folder,
    ):
        port = free_port()
        bench = prepare_bench(Path(folder), port, db.seed_url, ORG)
        load = prepare_accounts(bench, options)
        env: dict[str, str] = {}
        service = None
        if over_http:
            service, url = start_bank_service(bench.data_dir, db.server_url, bank_workers)
            env = {"STETGATE_BANK_URL": url, "STETGATE_BANK_AUTH": "none"}
        server = start_server(bench.data_dir, port, workers, db.server_url, env)
        try:
            service_pids = process_tree(service.pid) if service else []
            service_before = cpu_seconds(service_pids)
            result = run_load(
                load,
                server_pid=server.pid,
                port=port,
                warmup=options.warmup,
                seconds=options.seconds,
                database=db,
            )
            result["cpu_seconds"]["bank_service"] = cpu_seconds(service_pids) - service_before
        finally:
            stop_process(server)
            if service is not None:
                stop_process(service)
    summarize(result, options.seconds, ("200",))
    result.update(
        database_label=database_label(kind, 1.0),
        workers=workers,
        connections=options.connections,
        seconds=options.seconds,
        warmup=options.warmup,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bank-workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--presigned", type=int, default=2000)
    parser.add_argument(
        "--only", choices=["in-process", "http"], default=None, help="run one side only"
    )
    args = parser.parse_args()
    options = Options(
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
        presigned=args.presigned,
    )
    results = {}
    sides = {"in-process": (False,), "http": (True,), None: (False, True)}[args.only]
    for over_http in sides:
        result = run(
            args.database,
            args.workers,
            options,
            over_http=over_http,
            bank_workers=args.bank_workers,
        )
        label = "HttpBank → demo-bank service" if over_http else "in-process DemoBank"
        print_result(
            f"signed GET /accounts, {label}: {result['database_label']}, {args.workers} "
            f"worker(s), {args.connections} connections, {args.seconds:g} s",
            result,
        )
        print(f"demo-bank service CPU s: {result['cpu_seconds'].get('bank_service', 0.0):.2f}")
        results[over_http] = result
    if len(results) == 2:
        ratio = results[True]["throughput"] / max(results[False]["throughput"], 1e-9)
        print(f"\nHttpBank / in-process throughput: {ratio:.1%} (target ≥ 60 %)")


if __name__ == "__main__":
    main()
