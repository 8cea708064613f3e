"""Refresh grants per second: ``POST /stet/psd2/oauth/token`` with ``grant_type=refresh_token``
over mutual TLS with keep-alive (product bar: ≥ 7,000/s on SQLite and ≥ 2,500/s on PostgreSQL
on the 2-core reference box).

What one request costs the bank: the RFC 6749 §3.2 form, the QWAC of the TLS session
(validation cached until the certificate or the CRL could change), and one statement that
checks every refresh rule, issues the new access token bound to the QWAC and writes the
``token_refreshed`` audit row (`stetgate.oauth.refresh_store`). Nothing is skipped for the
benchmark: the server is a real ``stetgate serve`` process with default settings.

Set-up in a temporary folder: test QTSP, a TPP QWAC (AISP), migrated database (SQLite file, or
a fresh PostgreSQL database created next to ``--pg-admin-url`` and dropped afterwards), a
Go-Live client and one token pair per client connection, seeded directly. The load generator
runs in ``--client-processes`` separate processes (so it is not limited by one Python
thread), each with ``--connections`` keep-alive TLS connections on uvloop; each connection
sends its next refresh as soon as the previous answer arrived (no pipelining unless
``--pipeline N``). Responses are parsed (status and Content-Length) and counted only inside the
measuring window, after a warm-up.

    .venv/bin/python benchmarks/refresh_grants.py [--database sqlite|postgresql|both]
        [--workers 2] [--client-processes 1] [--connections 32] [--seconds 10]
        [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Prints grants per second, latency percentiles, status counts, the RSS of each server process
and the CPU time per grant of the server processes, the load generator and PostgreSQL (from
/proc). The load generator shares the two cores with the server (and PostgreSQL), so grants/s
is a floor for the server alone — and it drops when anything else runs on the box, while the
CPU time per grant barely moves: compare that figure when the box is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text

from stetgate.eidas import parse_certificate, qtsp
from stetgate.oauth.clients import golive_client, insert_client, stored_certificate
from stetgate.oauth.token_pairs import create_pair
from stetgate.settings import Settings
from stetgate.store.db import make_engine, upgrade

ORG = "PSDFR-ACPR-BENCH2"
TOKEN_PATH = "/stet/psd2/oauth/token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- set-up ------------------------------------------------------------------------------------


def prepare(data_dir: Path, port: int, database_url: str | None, grants: int) -> list[str]:
    """QTSP, TPP certificate, migrated and seeded database; returns the refresh tokens."""
    qtsp.init_qtsp(data_dir, ["localhost", "127.0.0.1"], f"https://127.0.0.1:{port}/qtsp/crl")
    qtsp.issue_tpp(data_dir, ORG, "Benchmark TPP", ["AISP"], data_dir / "tpp")
    settings = Settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings.resolved_database_url)
    qwac = parse_certificate((data_dir / "tpp" / "qwac.pem").read_bytes())
    now = datetime.now(UTC)
    engine = make_engine(settings.resolved_database_url, 1)
    tokens: list[str] = []
    with engine.begin() as conn:
        insert_client(
            conn,
            golive_client(
                ORG,
                "Benchmark TPP",
                ["https://tpp.example/cb"],
                now,
                certificates=[stored_certificate("qwac", qwac)],
            ),
        )
        for index in range(grants):
            pair = create_pair(
                conn,
                client_id=ORG,
                org_id=ORG,
                psu_id=f"bench-psu-{index}",
                role="aisp",
                scope="aisp",
                sca_at=now,
                refresh_expires_at=now + timedelta(days=90),
                access_expires_at=now + timedelta(hours=1),
                access_cnf=qwac.thumbprint_s256,
                now=now,
            )
            tokens.append(pair.refresh_token)
    engine.dispose()
    return tokens


def create_pg_database(admin_url: str) -> tuple[str, str]:
    name = f"stetgate_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def start_server(
    data_dir: Path, port: int, workers: int, database_url: str | None
) -> subprocess.Popen[bytes]:
    """``stetgate serve`` on 127.0.0.1, issuer pinned to the address the load generator uses
    (the TPP checks the callback's ``iss`` against it)."""
    env = dict(
        os.environ,
        STETGATE_DATA_DIR=str(data_dir),
        STETGATE_ISSUER=f"https://127.0.0.1:{port}",
    )
    if database_url:
        env["STETGATE_DATABASE_URL"] = database_url
    command = [
        sys.executable,
        "-m",
        "stetgate.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    context = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    deadline = time.monotonic() + 60
    while True:
        try:
            if (
                httpx.get(
                    f"https://127.0.0.1:{port}/health/ready", verify=context, timeout=2
                ).status_code
                == 200
            ):
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            error = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"stetgate serve did not start:\n{error}")
        time.sleep(0.2)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (from /proc/PID/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def postgres_backends() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def rss_of_tree(pid: int) -> dict[int, int]:
    """VmRSS (KiB) of ``pid`` and its descendants."""
    sizes: dict[int, int] = {}
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        sizes[member] = int(line.split()[1])
        except OSError:
            continue
    return sizes


# --- load generator ----------------------------------------------------------------------------


@dataclass
class Window:
    start: float
    end: float


class RefreshConnection(asyncio.Protocol):
    """One keep-alive connection replaying one refresh request (``pipeline`` in flight)."""

    def __init__(
        self,
        request: bytes,
        pipeline: int,
        window: Window,
        results: dict[str, Any],
        closed: asyncio.Future[None],
    ) -> None:
        self.request = request
        self.pipeline = pipeline
        self.window = window
        self.results = results
        self.closed = closed
        self.buffer = b""
        self.sent_at: list[float] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's SSL transport is not an asyncio.Transport
        for _ in range(self.pipeline):
            self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at.append(time.perf_counter())
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            status = head[9:12].decode()
            self.buffer = self.buffer[total:]
            now = time.perf_counter()
            sent = self.sent_at.pop(0)
            if self.window.start <= now < self.window.end:
                self.results["statuses"][status] += 1
                self.results["latencies"].append(now - sent)
            if now < self.window.end:
                self._send()
            elif not self.sent_at and self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.results["errors"].append(repr(exc))
        if not self.closed.done():
            self.closed.set_result(None)


def refresh_request(port: int, refresh_token: str) -> bytes:
    body = urlencode(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": ORG}
    ).encode()
    head = (
        f"POST {TOKEN_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def drive(
    port: int,
    tokens: list[str],
    data_dir: str,
    pipeline: int,
    start_at: float,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=f"{data_dir}/ca.pem")
    context.load_cert_chain(f"{data_dir}/tpp/qwac.pem", f"{data_dir}/tpp/qwac.key")
    results: dict[str, Any] = {"statuses": Counter(), "latencies": [], "errors": []}
    loop = asyncio.get_running_loop()
    wall_to_perf = time.perf_counter() - time.time()
    window = Window(start_at + warmup + wall_to_perf, start_at + warmup + seconds + wall_to_perf)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    closed: list[asyncio.Future[None]] = []
    for token in tokens:
        done: asyncio.Future[None] = loop.create_future()
        closed.append(done)
        await loop.create_connection(
            lambda t=token, d=done: RefreshConnection(  # type: ignore[misc]
                refresh_request(port, t), pipeline, window, results, d
            ),
            "127.0.0.1",
            port,
            ssl=context,
        )
    cpu: dict[str, float] = {}
    loop.call_at(
        loop.time() + window.start - time.perf_counter(),
        lambda: cpu.__setitem__("start", time.process_time()),
    )
    loop.call_at(
        loop.time() + window.end - time.perf_counter(),
        lambda: cpu.__setitem__("end", time.process_time()),
    )
    await asyncio.wait_for(asyncio.gather(*closed), timeout=warmup + seconds + 30)
    results["cpu"] = cpu.get("end", 0.0) - cpu.get("start", 0.0)
    return results


def client_process(
    port: int,
    tokens: list[str],
    data_dir: str,
    pipeline: int,
    start_at: float,
    warmup: float,
    seconds: float,
    queue: Any,
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(drive(port, tokens, data_dir, pipeline, start_at, warmup, seconds))
    queue.put(
        {
            "statuses": dict(results["statuses"]),
            "latencies": results["latencies"],
            "errors": results["errors"][:5],
            "cpu": results["cpu"],
        }
    )


def run_load(
    port: int,
    tokens: list[str],
    data_dir: Path,
    processes: int,
    connections: int,
    pipeline: int,
    warmup: float,
    seconds: float,
    server_pid: int,
) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start_at = time.time() + 1.0
    workers = []
    for index in range(processes):
        share = tokens[index * connections : (index + 1) * connections]
        worker = context.Process(
            target=client_process,
            args=(port, share, str(data_dir), pipeline, start_at, warmup, seconds, queue),
        )
        worker.start()
        workers.append(worker)
    server = process_tree(server_pid)
    time.sleep(max(0.0, start_at + warmup - time.time()))
    before = cpu_seconds(server), cpu_seconds(postgres_backends())
    time.sleep(max(0.0, start_at + warmup + seconds - time.time()))
    after = cpu_seconds(server), cpu_seconds(postgres_backends())
    collected = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    for item in collected:
        statuses.update(item["statuses"])
        latencies.extend(item["latencies"])
        errors.extend(item["errors"])
    return {
        "statuses": statuses,
        "latencies": latencies,
        "errors": errors,
        "server_cpu": after[0] - before[0],
        "postgres_cpu": after[1] - before[1],
        "client_cpu": sum(item["cpu"] for item in collected),
    }


def benchmark(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    pg_name: str | None = None
    database_url: str | None = None
    if kind == "postgresql":
        pg_name, database_url = create_pg_database(args.pg_admin_url)
    needed = args.client_processes * args.connections
    try:
        with tempfile.TemporaryDirectory(prefix="stetgate-refresh-bench-") as folder:
            data_dir = Path(folder)
            tokens = prepare(data_dir, port, database_url, needed)
            server = start_server(data_dir, port, args.workers, database_url)
            try:
                result = run_load(
                    port,
                    tokens,
                    data_dir,
                    args.client_processes,
                    args.connections,
                    args.pipeline,
                    args.warmup,
                    args.seconds,
                    server.pid,
                )
                result["rss_kib"] = rss_of_tree(server.pid)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
    finally:
        if pg_name is not None:
            drop_pg_database(args.pg_admin_url, pg_name)
    return result


def report(kind: str, args: argparse.Namespace, result: dict[str, Any]) -> None:
    statuses: Counter[str] = result["statuses"]
    latencies = sorted(result["latencies"])
    total = sum(statuses.values())
    ok = statuses.get("200", 0)
    print(
        f"\n== {kind}: {args.workers} worker(s), {args.client_processes} client process(es) x "
        f"{args.connections} connections, pipeline {args.pipeline}, {args.seconds:g} s measured"
    )
    rate = ok / args.seconds
    print(f"refresh grants/s: {rate:,.0f}   (responses {total}, statuses {dict(statuses)})")
    if latencies:
        quantiles = statistics.quantiles(latencies, n=100)
        print(
            f"latency ms: p50 {quantiles[49] * 1000:.2f}  p90 {quantiles[89] * 1000:.2f}  "
            f"p99 {quantiles[98] * 1000:.2f}  max {latencies[-1] * 1000:.2f}"
        )
    if ok:
        per = {
            name: result[name] / ok * 1e6 for name in ("server_cpu", "client_cpu", "postgres_cpu")
        }
        print(
            f"CPU per grant µs: server {per['server_cpu']:.0f}, load generator "
            f"{per['client_cpu']:.0f}, postgres processes {per['postgres_cpu']:.0f} "
            f"(server alone on 2 cores: ~{2e6 / per['server_cpu']:,.0f} grants/s)"
        )
    sizes = result["rss_kib"]
    print(
        "server RSS MiB: " + ", ".join(f"pid {pid}: {kib / 1024:.0f}" for pid, kib in sizes.items())
    )
    if result["errors"]:
        print(f"client errors: {result['errors'][:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32, help="per client process")
    parser.add_argument("--pipeline", type=int, default=1, help="requests in flight per connection")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "STETGATE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        report(kind, args, benchmark(kind, args))


if __name__ == "__main__":
    main()
