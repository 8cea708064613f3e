"""Signed ``GET /accounts`` throughput over mutual TLS with keep-alive (the product's bar: at
least 2,000 requests per second).

What one request costs the bank: QWAC from the TLS session (validation cached), the access
token lookup (one statement: grant + client + QSealC references + consent), the RFC 8705
binding check, the draft-cavage RSA-2048 signature verification with the registered QSealC,
the demo bank's accounts and balances, and the HAL JSON response. The PSU is present
(``PSU-IP-Address``), as for any interactive use; unattended calls are capped at 4 a day.

Set-up in a temporary folder: test QTSP, TPP certificates, migrated database, demo bank
(seed 1), a Go-Live client, an access token bound to the QWAC and a consent covering the
balances and transactions of every account of the PSU. Then ``stetgate serve --workers N``
runs as a real process and an asyncio client (one process, ``--connections`` keep-alive TLS
connections, each sending its next request when the previous answer arrived) replays
pre-signed requests — RSA signing costs ~1 ms, so it is done before the clock starts; every
request has its own ``X-Request-ID``.

    .venv/bin/python benchmarks/accounts.py [--workers 2] [--connections 32] [--seconds 10]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB] [--requests 4000]

Prints requests per second, latency percentiles, status counts and the RSS of each worker.
The load generator shares the machine's cores with the server, so the figure is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from stetgate.demo.bank import DemoBank
from stetgate.demo.seed import seed_demo_bank
from stetgate.eidas import parse_certificate, qtsp
from stetgate.httpsig import required_signed_headers, sign_request
from stetgate.oauth.clients import golive_client, insert_client, stored_certificate
from stetgate.oauth.token_pairs import create_pair
from stetgate.psd2.consents import Consent, replace_consent
from stetgate.settings import Settings
from stetgate.store.db import make_engine, upgrade

ORG = "PSDFR-ACPR-BENCH1"
PSU = "jdupont"
PATH = "/stet/psd2/v1.4.2/accounts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(data_dir: Path, port: int, database_url: str | None) -> tuple[dict[str, str], str]:
    """Everything the bank and the TPP need; returns (server environment, access token)."""
    qtsp.init_qtsp(data_dir, ["localhost", "127.0.0.1"], f"https://127.0.0.1:{port}/qtsp/crl")
    qtsp.issue_tpp(data_dir, ORG, "Benchmark TPP", ["AISP"], data_dir / "tpp")
    env = {
        "STETGATE_DATA_DIR": str(data_dir),
        "STETGATE_TRUST_DIR": str(data_dir / "trust"),
        "STETGATE_CRL_DIR": str(data_dir / "crl"),
    }
    if database_url:
        env["STETGATE_DATABASE_URL"] = database_url
    settings = Settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings.resolved_database_url)
    now = datetime.now(UTC)
    seed_demo_bank(settings, 1, now=now)
    engine = make_engine(settings.resolved_database_url, 1)
    qwac = parse_certificate((data_dir / "tpp" / "qwac.pem").read_bytes())
    qsealc = parse_certificate((data_dir / "tpp" / "qsealc.pem").read_bytes())
    accounts = [a.resource_id for a in DemoBank(engine).accounts_of(PSU)]
    with engine.begin() as conn:
        insert_client(
            conn,
            golive_client(
                ORG,
                "Benchmark TPP",
                ["https://tpp.example/cb"],
                now,
                certificates=[
                    stored_certificate("qwac", qwac),
                    stored_certificate("qsealc", qsealc),
                ],
                grant_types=("authorization_code",),
            ),
        )
        pair = create_pair(
            conn,
            client_id=ORG,
            org_id=ORG,
            psu_id=PSU,
            role="aisp",
            scope="aisp",
            sca_at=now,
            refresh_expires_at=now + timedelta(days=90),
            access_expires_at=now + timedelta(hours=6),
            access_cnf=qwac.thumbprint_s256,
            now=now,
        )
        replace_consent(
            conn, PSU, ORG, Consent(frozenset(accounts), frozenset(accounts), True, True), now
        )
    engine.dispose()
    return env, pair.access_token


def presign(data_dir: Path, token: str, count: int) -> list[bytes]:
    key = serialization.load_pem_private_key((data_dir / "tpp" / "qsealc.key").read_bytes(), None)
    assert isinstance(key, RSAPrivateKey)
    seal = parse_certificate((data_dir / "tpp" / "qsealc.pem").read_bytes())
    key_id = f"SN={seal.serial_hex},CA={seal.issuer_dn}"
    requests = []
    for _ in range(count):
        headers = {
            "X-Request-ID": str(uuid.uuid4()),
            "PSU-IP-Address": "198.51.100.7",
            "Accept": "application/hal+json",
            "Authorization": f"Bearer {token}",
        }
        headers["Signature"] = sign_request(
            "GET", PATH, headers, key, key_id, required_signed_headers(headers, b"")
        )
        lines = [f"GET {PATH} HTTP/1.1", "Host: localhost"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        requests.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return requests


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connection(
    stream: Stream,
    requests: list[bytes],
    offset: int,
    stop_at: float,
    measure_from: float,
    latencies: list[float],
    statuses: Counter[int],
) -> None:
    reader, writer = stream
    index = offset
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        writer.write(requests[index % len(requests)])
        index += 7
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        if started >= measure_from:
            latencies.append(time.perf_counter() - started)
            statuses[int(head[9:12])] += 1
    writer.close()


async def load(
    port: int,
    context: ssl.SSLContext,
    requests: list[bytes],
    connections: int,
    warmup: float,
    seconds: float,
) -> tuple[list[float], Counter[int], float]:
    """Open the connections one by one (so the workers' accept loops share them, as TPPs
    connecting over time would), then run them all for ``warmup`` + ``seconds``."""
    streams: list[Stream] = []
    for _ in range(connections):
        streams.append(
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
        )
        await asyncio.sleep(0.02)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds
    await asyncio.gather(
        *(
            connection(stream, requests, i, stop_at, measure_from, latencies, statuses)
            for i, stream in enumerate(streams)
        )
    )
    return latencies, statuses, seconds


def process_rss(server_pid: int) -> list[tuple[str, int, int]]:
    """(role, pid, RSS in KiB) of the ``serve`` process and its children (uvicorn workers,
    multiprocessing's resource tracker)."""
    pids = [server_pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == server_pid:
                pids.append(int(entry.name))
    found = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        role = (
            "supervisor"
            if pid == server_pid
            else "worker"
            if b"spawn_main" in command
            else "resource tracker"
        )
        found.append((role, pid, int(rss.split()[1])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=4000, help="distinct pre-signed requests")
    parser.add_argument("--database-url", default=None, help="default: SQLite in the temp folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stetgate-bench-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env, token = prepare(data_dir, port, args.database_url)
        print(f"presigning {args.requests} requests ...", flush=True)
        requests = presign(data_dir, token, args.requests)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stetgate.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            context = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
            context.load_cert_chain(
                str(data_dir / "tpp" / "qwac.pem"), str(data_dir / "tpp" / "qwac.key")
            )
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"https://localhost:{port}/health/live", verify=context, timeout=2)
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(
                            "server did not start:\n"
                            + (server.stderr.read().decode() if server.stderr else "")
                        ) from None
                    time.sleep(0.2)
            try:
                import uvloop

                uvloop.install()
            except ImportError:
                pass
            latencies, statuses, seconds = asyncio.run(
                load(port, context, requests, args.connections, args.warmup, args.seconds)
            )
            rss = process_rss(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=15)
    latencies.sort()
    count = len(latencies)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"signed GET /accounts, {database}, {args.workers} worker(s), "
        f"{args.connections} keep-alive mTLS connections, {seconds:.0f} s"
    )
    print(f"  {count / seconds:,.0f} req/s   statuses {dict(statuses)}")
    if count:
        print(
            f"  latency p50 {statistics.median(latencies) * 1000:.2f} ms   "
            f"p99 {latencies[int(count * 0.99) - 1] * 1000:.2f} ms"
        )
    for role, pid, kib in rss:
        print(f"  {role} (pid {pid}): RSS {kib / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
