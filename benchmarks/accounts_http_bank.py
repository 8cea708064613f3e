"""Signed ``GET /accounts`` through `HttpBank` (core banking over HTTP) against the same
through the in-process demo bank (target: HTTP keeps ≥ 60 % of the in-process throughput).

Both runs are the ``accounts`` scenario of `scenarios` (mutual TLS, keep-alive, pre-signed
RSA-2048 requests, a consent covering every account so each request reads accounts *and*
balances — one backend call, ``GET /core-banking/v1/psus/{psu}/accounts?balancesFor=…``).
Two HTTP backends, each run after the in-process one:

- ``demo-bank``: ``stetgate demo-bank serve --workers N`` on the same database (plain HTTP on
  127.0.0.1, ``bank_auth = none``), the gateway with ``STETGATE_BANK_URL``. The service shares
  the two cores with the gateway and the load generator, so its CPU is reported apart: on a
  real deployment it is the bank's machine that pays it.
- ``recorded``: Debian's nginx serving the demo service's own answer to this very request,
  recorded before the run, with ``X-Request-ID`` echoed — a backend whose cost (~20 µs a
  request) is next to nothing, as one on its own machines would be to the gateway's cores. It
  measures what the acceptance is about: what talking HTTP costs the *gateway*.

    .venv/bin/python benchmarks/accounts_http_bank.py
        [--database sqlite|postgresql] [--workers 2] [--bank-workers 1]
        [--connections 64] [--seconds 10] [--presigned 2000]
        [--backends demo-bank,recorded] [--only in-process|http]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from harness import (
    PG_ADMIN_URL,
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
from scenarios import ACCOUNTS_PSU, ORG, Options, prepare_accounts

from stetgate.demo.bank import DemoBank

_NGINX_CONFIG = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
        default_type application/json;
        add_header X-Request-ID $http_x_request_id always;
        add_header Cache-Control no-store always;
        location = /core-banking/v1/health {{ return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""


def start_recorded_backend(folder: Path, service_url: str, engine: Any) -> tuple[Any, str]:
    """nginx serving the demo service's answer to the benchmark's ``GET /accounts`` call."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("the recorded backend needs nginx (apt-get install nginx)")
    accounts = sorted(a.resource_id for a in DemoBank(engine).accounts_of(ACCOUNTS_PSU))
    path = f"/core-banking/v1/psus/{quote(ACCOUNTS_PSU, safe='')}/accounts"
    query = urlencode([("balancesFor", a) for a in accounts])
    answer = httpx.get(f"{service_url}{path}?{query}", timeout=10)
    answer.raise_for_status()
    folder.chmod(0o755)  # nginx's workers run as its unprivileged user
    prefix = folder / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    target = prefix / "www" / path.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(answer.content)
    port = free_port()
    (prefix / "nginx.conf").write_text(_NGINX_CONFIG.format(prefix=prefix, port=port))
    command = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=2).content == answer.content:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"nginx did not start:\n{(prefix / 'error.log').read_text()}")
        time.sleep(0.1)


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
    kind: str, workers: int, options: Options, *, backend: str | None, bank_workers: int
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
        if backend is not None:
            service, url = start_bank_service(bench.data_dir, db.server_url, bank_workers)
            if backend == "recorded":
                demo_service = service
                engine = bench.engine()
                try:
                    service, url = start_recorded_backend(Path(folder), url, engine)
                finally:
                    engine.dispose()
                    stop_process(demo_service)
            env = {"STETGATE_BANK_URL": url, "STETGATE_BANK_AUTH": "none"}
        server = start_server(bench.data_dir, port, workers, db.server_url, env)
        try:
            result = run_load(
                load,
                server_pid=server.pid,
                port=port,
                warmup=options.warmup,
                seconds=options.seconds,
                database=db,
                others={"backend": process_tree(service.pid) if service else []},
            )
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
    parser.add_argument(
        "--backends", default="demo-bank,recorded", help="HTTP backends, comma-separated"
    )
    args = parser.parse_args()
    options = Options(
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
        presigned=args.presigned,
    )
    results: dict[str | None, dict[str, Any]] = {}
    backends: list[str | None] = []
    if args.only != "http":
        backends.append(None)
    if args.only != "in-process":
        backends += [b for b in args.backends.split(",") if b]
    labels = {
        None: "in-process DemoBank",
        "demo-bank": "HttpBank → demo-bank service",
        "recorded": "HttpBank → recorded answers (nginx)",
    }
    for backend in backends:
        result = run(
            args.database, args.workers, options, backend=backend, bank_workers=args.bank_workers
        )
        label = labels[backend]
        print_result(
            f"signed GET /accounts, {label}: {result['database_label']}, {args.workers} "
            f"worker(s), {args.connections} connections, {args.seconds:g} s",
            result,
        )
        if backend is not None:
            backend_cpu = result["cpu_seconds"]["backend"]
            per_request = backend_cpu / max(result["ok"], 1) * 1e6
            print(f"backend CPU: {backend_cpu:.2f} s, {per_request:.0f} µs per request")
        results[backend] = result
    if None in results:
        base = max(results[None]["throughput"], 1e-9)
        for backend in backends[1:]:
            ratio = results[backend]["throughput"] / base
            print(f"HttpBank ({backend}) / in-process throughput: {ratio:.1%} (target ≥ 60 %)")


if __name__ == "__main__":
    main()
