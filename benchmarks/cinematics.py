"""Whole "get your token" cinematics per second (product bar: ≥ 50/s on the 2-core reference
box), end to end through a real ``stetgate serve`` process.

One cinematic is what a TPP and its PSU do for one consent (STET v1.4.2 Part I §3.4.3; steps 2-7
of docs/decisions.md#the-cinematic): ``GET /stet/psd2/oauth/authorize`` → PSU identification
(``psu_id`` + ``password``, argon2id check) → SCA method → TOTP (``otp``, RFC 6238, replay
refused) → consent (``decision=authorize``) → redirect to the TPP callback with the code →
``POST /stet/psd2/oauth/token`` (``authorization_code``) over mutual TLS with the TPP's QWAC. It
is driven by the shipped TPP library: `stetgate.tpp.client.StetBankClient` (one keep-alive mTLS
client per load thread, like a TPP back end) and `stetgate.tpp.psu_robot.PsuRobot` walking the
PSU pages in a fresh browser (new ``httpx.Client``: new TLS session, no cookies) per cinematic.
Nothing is weakened for the benchmark: default settings, OWASP argon2id parameters.

Set-up in a temporary folder: test QTSP, a TPP QWAC/QSealC (AISP), migrated database (SQLite
file, or a fresh PostgreSQL database created next to ``--pg-admin-url`` and dropped afterwards),
the TPP registered as a Go-Live client (redirect URI ``https://127.0.0.1/cb``, never fetched),
and ``--psus`` PSUs inserted directly: one argon2id hash of a shared password (hashing each
PSU would take minutes) and one TOTP secret per PSU, encrypted with the instance key exactly as
`stetgate.bank.psus.DatabasePsuDirectory` stores it. A TOTP time step is accepted once per PSU
(RFC 6238 §5.2), so each load thread owns a share of the PSUs and uses each at most once per
30 s step; a thread that runs out waits for the next step (reported as "PSU waits": raise
``--psus`` if it is not 0).

    .venv/bin/python benchmarks/cinematics.py [--database sqlite|postgresql|both]
        [--workers 2] [--client-processes 2] [--concurrency 8] [--seconds 10] [--warmup 3]
        [--psus 3000] [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Prints cinematics per second (completed inside the measuring window, after the warm-up),
latency percentiles of a whole cinematic, failures, the RSS of each server process, and the CPU
time per cinematic of the server processes, the load generator and PostgreSQL (from /proc).
The load generator shares the cores with the server, so cinematics/s is a floor for the server
alone; "server alone on N cores" extrapolates from the server CPU per cinematic, and the "box
CPU busy" line shows how much of the box other processes (tests, other benchmarks) took. The
"password check" line sets the server CPU per cinematic against one argon2id ``verify``
measured in this process: the share the password check accounts for, and the ceiling it alone
puts on the box.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from stetgate.demo.psu_directory import password_hasher
from stetgate.demo.totp import decode_totp_secret, new_totp_secret, time_step, totp_at
from stetgate.eidas import parse_certificate, qtsp
from stetgate.keys import InstanceKeys, load_master_key
from stetgate.oauth.clients import golive_client, insert_client, stored_certificate
from stetgate.settings import Settings
from stetgate.store.db import make_engine, upgrade
from stetgate.store.schema import psus
from stetgate.tpp.client import StetBankClient, TppCredentials
from stetgate.tpp.psu_robot import PsuRobot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refresh_grants import (  # sibling benchmark: same server and /proc plumbing
    cpu_seconds,
    create_pg_database,
    drop_pg_database,
    free_port,
    postgres_backends,
    process_tree,
    rss_of_tree,
    start_server,
)

ORG = "PSDFR-ACPR-BENCH3"
CALLBACK = "https://127.0.0.1/cb"
PASSWORD = "bench-Password-2024!"


# --- set-up ------------------------------------------------------------------------------------


def prepare(
    data_dir: Path, port: int, database_url: str | None, count: int
) -> list[tuple[str, str]]:
    """QTSP, TPP certificates, migrated database, Go-Live client and PSUs; returns
    ``(psu_id, base32 TOTP secret)`` per PSU."""
    qtsp.init_qtsp(data_dir, ["localhost", "127.0.0.1"], f"https://127.0.0.1:{port}/qtsp/crl")
    qtsp.issue_tpp(data_dir, ORG, "Cinematics Benchmark TPP", ["AISP"], data_dir / "tpp")
    settings = Settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings.resolved_database_url)
    fernet = InstanceKeys.from_master(load_master_key(None, data_dir)).totp_fernet
    password_hash = password_hasher().hash(PASSWORD)
    qwac = parse_certificate((data_dir / "tpp" / "qwac.pem").read_bytes())
    now = datetime.now(UTC)
    people = [(f"bench-psu-{index:05d}", new_totp_secret()) for index in range(count)]
    engine = make_engine(settings.resolved_database_url, 1)
    with engine.begin() as conn:
        insert_client(
            conn,
            golive_client(
                ORG,
                "Cinematics Benchmark TPP",
                [CALLBACK],
                now,
                certificates=[stored_certificate("qwac", qwac)],
            ),
        )
        # Same columns and encryption as DatabasePsuDirectory.add_psu (secret normalised:
        # new_totp_secret is already upper-case base32 without padding).
        conn.execute(
            insert(psus),
            [
                {
                    "psu_id": psu_id,
                    "display_name": psu_id,
                    "password_hash": password_hash,
                    "totp_secret_enc": fernet.encrypt(secret.encode()).decode(),
                    "totp_last_step": None,
                    "app_sca": False,
                    "failed_attempts": 0,
                    "blocked_until": None,
                    "created_at": now,
                }
                for psu_id, secret in people
            ],
        )
    engine.dispose()
    return people


def box_busy_seconds() -> float:
    """CPU seconds all processes of the box have spent so far (/proc/stat, all cores)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def password_check_seconds(rounds: int = 7) -> float:
    """Median wall time of one `password_hasher().verify` (the login's argon2id check)."""
    hasher = password_hasher()
    stored = hasher.hash(PASSWORD)
    timings = []
    for _ in range(rounds):
        started = time.process_time()
        hasher.verify(stored, PASSWORD)
        timings.append(time.process_time() - started)
    return statistics.median(timings)


# --- load generator ----------------------------------------------------------------------------


class PsuPool:
    """One thread's PSUs; each is handed out at most once per TOTP time step."""

    def __init__(self, people: list[tuple[str, str]]) -> None:
        self.people = [(psu_id, decode_totp_secret(secret)) for psu_id, secret in people]
        self.last_step = [-1] * len(self.people)
        self.cursor = 0
        self.waits = 0

    def take(self, deadline: float) -> tuple[int, str, bytes] | None:
        while time.time() < deadline:
            step = time_step(datetime.now(UTC))
            for _ in range(len(self.people)):
                index = self.cursor
                self.cursor = (self.cursor + 1) % len(self.people)
                if self.last_step[index] < step:
                    return index, *self.people[index]
            self.waits += 1
            time.sleep(min(1.0, max(0.0, deadline - time.time())))
        return None


def cinematic_thread(
    base_url: str,
    data_dir: Path,
    pool: PsuPool,
    start_at: float,
    window: tuple[float, float],
    results: dict[str, Any],
    lock: threading.Lock,
) -> None:
    browser_tls = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    tpp = StetBankClient(
        base_url, TppCredentials.from_directory(data_dir / "tpp"), ORG, ca_file=data_dir / "ca.pem"
    )
    time.sleep(max(0.0, start_at - time.time()))
    try:
        while time.time() < window[1]:
            taken = pool.take(window[1])
            if taken is None:
                break
            index, psu_id, key = taken

            def otp(index: int = index, key: bytes = key) -> str:
                at = datetime.now(UTC)
                pool.last_step[index] = time_step(at)
                return totp_at(key, at)

            robot = PsuRobot(psu_id, PASSWORD, otp=otp, method="totp")
            started = time.time()
            try:
                with httpx.Client(verify=browser_tls, timeout=30) as browser:
                    request = tpp.authorization_request("aisp", CALLBACK)
                    callback = robot.walk(browser, request.url, CALLBACK)
                tokens = tpp.exchange_code(request, callback, expected_issuer=base_url)
                outcome = "ok" if tokens.access_token and tokens.refresh_token else "no token"
            except Exception as error:  # counted and reported; the load goes on
                outcome = f"{type(error).__name__}: {str(error)[:160]}"
            ended = time.time()
            if window[0] <= ended < window[1]:
                with lock:
                    results["outcomes"][outcome] += 1
                    if outcome == "ok":
                        results["latencies"].append(ended - started)
    finally:
        tpp.close()


def client_process(
    base_url: str,
    data_dir: str,
    shares: list[list[tuple[str, str]]],
    start_at: float,
    window: tuple[float, float],
    queue: Any,
) -> None:
    results: dict[str, Any] = {"outcomes": Counter(), "latencies": []}
    lock = threading.Lock()
    pools = [PsuPool(share) for share in shares]
    threads = [
        threading.Thread(
            target=cinematic_thread,
            args=(base_url, Path(data_dir), pool, start_at, window, results, lock),
            daemon=True,
        )
        for pool in pools
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window[0] - time.time()))
    cpu_start = time.process_time()
    time.sleep(max(0.0, window[1] - time.time()))
    cpu_end = time.process_time()
    for thread in threads:
        thread.join(timeout=60)
    queue.put(
        {
            "outcomes": dict(results["outcomes"]),
            "latencies": results["latencies"],
            "cpu": cpu_end - cpu_start,
            "waits": sum(pool.waits for pool in pools),
        }
    )


def run_load(
    port: int,
    people: list[tuple[str, str]],
    data_dir: Path,
    args: argparse.Namespace,
    server_pid: int,
) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    threads = args.client_processes * args.concurrency
    per_thread = len(people) // threads
    shares = [people[i * per_thread : (i + 1) * per_thread] for i in range(threads)]
    start_at = time.time() + 1.0
    window = (start_at + args.warmup, start_at + args.warmup + args.seconds)
    base_url = f"https://127.0.0.1:{port}"
    workers = []
    for index in range(args.client_processes):
        mine = shares[index * args.concurrency : (index + 1) * args.concurrency]
        worker = context.Process(
            target=client_process, args=(base_url, str(data_dir), mine, start_at, window, queue)
        )
        worker.start()
        workers.append(worker)
    server = process_tree(server_pid)
    time.sleep(max(0.0, window[0] - time.time()))
    before = cpu_seconds(server), cpu_seconds(postgres_backends()), box_busy_seconds()
    time.sleep(max(0.0, window[1] - time.time()))
    after = cpu_seconds(server), cpu_seconds(postgres_backends()), box_busy_seconds()
    collected = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    for item in collected:
        outcomes.update(item["outcomes"])
        latencies.extend(item["latencies"])
    return {
        "outcomes": outcomes,
        "latencies": latencies,
        "server_cpu": after[0] - before[0],
        "postgres_cpu": after[1] - before[1],
        "client_cpu": sum(item["cpu"] for item in collected),
        "box_cpu": after[2] - before[2],
        "waits": sum(item["waits"] for item in collected),
    }


def benchmark(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    pg_name: str | None = None
    database_url: str | None = None
    if kind == "postgresql":
        pg_name, database_url = create_pg_database(args.pg_admin_url)
    try:
        with tempfile.TemporaryDirectory(prefix="stetgate-cinematics-bench-") as folder:
            data_dir = Path(folder)
            people = prepare(data_dir, port, database_url, args.psus)
            server = start_server(data_dir, port, args.workers, database_url)
            try:
                result = run_load(port, people, data_dir, args, server.pid)
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


def report(kind: str, args: argparse.Namespace, result: dict[str, Any], argon2: float) -> None:
    outcomes: Counter[str] = result["outcomes"]
    latencies = sorted(result["latencies"])
    ok = outcomes.get("ok", 0)
    threads = args.client_processes * args.concurrency
    print(
        f"\n== {kind}: {args.workers} worker(s), {args.client_processes} client process(es) x "
        f"{args.concurrency} threads, {args.psus} PSUs ({args.psus // threads} per thread), "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up"
    )
    print(f"cinematics/s: {ok / args.seconds:.1f}   (completed {ok}, bar ≥ 50/s)")
    failures = {name: n for name, n in outcomes.items() if name != "ok"}
    if failures:
        print(f"failures: {failures}")
    if result["waits"]:
        print(f"PSU waits (thread ran out of unused TOTP steps): {result['waits']}; raise --psus")
    if len(latencies) >= 2:
        quantiles = statistics.quantiles(latencies, n=100)
        print(
            f"cinematic latency ms: p50 {quantiles[49] * 1000:.0f}  p90 {quantiles[89] * 1000:.0f}"
            f"  p99 {quantiles[98] * 1000:.0f}  max {latencies[-1] * 1000:.0f}"
        )
    cores = os.cpu_count() or 1
    if ok:
        per = {
            name: result[name] / ok * 1e3 for name in ("server_cpu", "client_cpu", "postgres_cpu")
        }
        print(
            f"CPU per cinematic ms: server {per['server_cpu']:.1f}, load generator "
            f"{per['client_cpu']:.1f}, postgres processes {per['postgres_cpu']:.1f} "
            f"(server alone on {cores} cores: ~{cores * 1e3 / per['server_cpu']:.0f}/s)"
        )
        print(
            f"password check: one argon2id verify = {argon2 * 1e3:.1f} ms CPU here = "
            f"{argon2 * 1e3 / per['server_cpu']:.0%} of the server CPU per cinematic; "
            f"argon2 alone caps {cores} cores at ~{cores / argon2:.0f} cinematics/s"
        )
    ours = result["server_cpu"] + result["client_cpu"] + result["postgres_cpu"]
    print(
        f"box CPU busy during the window: {result['box_cpu'] / args.seconds:.2f} of {cores} cores "
        f"(this benchmark {ours / args.seconds:.2f}, other processes "
        f"{max(0.0, result['box_cpu'] - ours) / args.seconds:.2f})"
    )
    sizes = result["rss_kib"]
    print(
        "server RSS MiB: " + ", ".join(f"pid {pid}: {kib / 1024:.0f}" for pid, kib in sizes.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="threads per client process")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--psus",
        type=int,
        default=3000,
        help="PSUs created; each is used once per 30 s TOTP step, so ≥ 30 x the rate",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "STETGATE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.psus < args.client_processes * args.concurrency:
        parser.error("--psus must give every load thread at least one PSU")
    argon2 = password_check_seconds()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        report(kind, args, benchmark(kind, args), argon2)


if __name__ == "__main__":
    main()
