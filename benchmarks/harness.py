"""What every end-to-end benchmark shares: databases (SQLite, PostgreSQL, PostgreSQL behind the
latency proxy), the test PKI and a migrated data folder, a real ``stetgate serve`` process,
load generators, /proc accounting and the printed summary.

Load generators (each in forked processes, so they are not limited by one Python thread and
their CPU is accounted apart from the server's):

- `keepalive_load`: asyncio (uvloop) connections over mutual TLS with keep-alive; each sends
  its next request as soon as the previous answer arrived. A connection replays its list of
  requests in a cycle, or sends each once (``cycle=False``: authorization codes) and stops.
- `new_connection_load`: each slot opens a new mTLS connection, sends one request, reads the
  answer and closes; optionally resuming the slot's previous TLS session.
- scenarios with their own client (the whole cinematic) pass any function with the same
  contract to `run_load`.

A load function gets ``(arguments, start, queue)``: it opens its connections, calls
``start.ready()``, gets ``(start_at, window)`` from ``start.wait()`` (epoch seconds; the
parent sets them once every load process is ready) and puts one dict on the queue:
``statuses`` (in the measuring window), ``all_statuses`` (warm-up included), ``latencies``
(seconds, responses completed in the window), ``errors``, ``extra`` (counters added up).
Everything stops by itself: connections stop sending at the end of the window, and the
parent gives the load processes a bounded time to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Connection, Engine, create_engine, text

from stetgate.eidas import parse_certificate, qtsp
from stetgate.oauth.clients import golive_client, insert_client, stored_certificate
from stetgate.oauth.token_pairs import TokenPair, create_pair
from stetgate.settings import Settings
from stetgate.store.db import make_engine, upgrade

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_proxy import start_proxy, stop_process  # sibling script

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get(
    "STETGATE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("sqlite", "postgresql", "postgresql-proxy")
"""``postgresql-proxy``: PostgreSQL behind `latency_proxy` (``rtt_ms`` added round trip)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- databases -----------------------------------------------------------------------------------


@dataclass
class Database:
    """Where one run's data lives: ``seed_url`` for set-up (direct), ``server_url`` for the
    server (through the proxy when there is one)."""

    kind: str
    seed_url: str | None
    server_url: str | None
    pg_name: str | None = None
    proxy_pid: int | None = None
    rtt_ms: float = 0.0


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


def _via_port(url: str, port: int) -> str:
    head, _, tail = url.partition("@")
    return f"{head}@127.0.0.1:{port}/{tail.partition('/')[2]}"


@contextlib.contextmanager
def database(
    kind: str, *, pg_admin_url: str = PG_ADMIN_URL, rtt_ms: float = 1.0
) -> Iterator[Database]:
    """A fresh database of ``kind`` (`DATABASES`); PostgreSQL ones are dropped afterwards.
    SQLite (``seed_url`` None) lives in the run's data folder."""
    if kind == "sqlite":
        yield Database(kind, None, None)
        return
    if kind not in DATABASES:
        raise ValueError(f"unknown database {kind!r}: one of {', '.join(DATABASES)}")
    name, url = create_pg_database(pg_admin_url)
    proxy = None
    try:
        if kind == "postgresql-proxy":
            host_port = url.partition("@")[2].partition("/")[0]
            target = ("127.0.0.1", int(host_port.rpartition(":")[2] or 5432))
            port, proxy = start_proxy(target, rtt_ms / 2)
            yield Database(kind, url, _via_port(url, port), name, proxy.pid, rtt_ms)
        else:
            yield Database(kind, url, url, name)
    finally:
        if proxy is not None:
            stop_process(proxy)
        drop_pg_database(pg_admin_url, name)


def database_label(kind: str, rtt_ms: float) -> str:
    if kind == "postgresql-proxy":
        return f"PostgreSQL +{rtt_ms:g} ms RTT"
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]


# --- set-up ----------------------------------------------------------------------------------


@dataclass
class Bench:
    """One run's data folder, port and migrated database, with a TPP's certificates."""

    data_dir: Path
    port: int
    database_url: str | None
    org: str
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(data_dir=self.data_dir, database_url=self.database_url)

    @property
    def tpp_dir(self) -> Path:
        return self.data_dir / "tpp"

    @property
    def ca_pem(self) -> Path:
        return self.data_dir / "ca.pem"

    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url, 1)

    def tls_context(self, *, client_certificate: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_pem))
        if client_certificate:
            context.load_cert_chain(self.tpp_dir / "qwac.pem", self.tpp_dir / "qwac.key")
        return context


def prepare_bench(
    data_dir: Path, port: int, database_url: str | None, org: str, name: str = "Benchmark TPP"
) -> Bench:
    """Test QTSP, server certificate, a TPP QWAC and QSealC (AISP), migrated database."""
    qtsp.init_qtsp(data_dir, ["localhost", "127.0.0.1"], f"https://127.0.0.1:{port}/qtsp/crl")
    qtsp.issue_tpp(data_dir, org, name, ["AISP"], data_dir / "tpp")
    bench = Bench(data_dir, port, database_url, org)
    upgrade(bench.settings.resolved_database_url)
    return bench


def register_tpp(
    bench: Bench,
    redirect_uri: str,
    *,
    with_qsealc: bool = False,
    grant_types: tuple[str, ...] | None = None,
) -> None:
    """The benchmark TPP as a Go-Live client with its QWAC (and QSealC)."""
    certificates = [
        stored_certificate("qwac", parse_certificate((bench.tpp_dir / "qwac.pem").read_bytes()))
    ]
    if with_qsealc:
        qsealc = parse_certificate((bench.tpp_dir / "qsealc.pem").read_bytes())
        certificates.append(stored_certificate("qsealc", qsealc))
    extra: dict[str, Any] = {} if grant_types is None else {"grant_types": grant_types}
    engine = bench.engine()
    with engine.begin() as conn:
        insert_client(
            conn,
            golive_client(
                bench.org,
                "Benchmark TPP",
                [redirect_uri],
                datetime.now(UTC),
                certificates=certificates,
                **extra,
            ),
        )
    engine.dispose()


def seed_rows(bench: Bench, count: int, make: Callable[[Connection, int, datetime], T]) -> list[T]:
    """``make(conn, index, now)`` for ``index`` in ``range(count)``, in one transaction."""
    now = datetime.now(UTC)
    engine = bench.engine()
    with engine.begin() as conn:
        made = [make(conn, index, now) for index in range(count)]
    engine.dispose()
    return made


def seed_pairs(bench: Bench, count: int, psu: Callable[[int], str]) -> list[TokenPair]:
    """``count`` AISP token pairs of the benchmark TPP, the access tokens bound to its QWAC."""
    thumbprint = parse_certificate((bench.tpp_dir / "qwac.pem").read_bytes()).thumbprint_s256
    return seed_rows(
        bench,
        count,
        lambda conn, index, now: create_pair(
            conn,
            client_id=bench.org,
            org_id=bench.org,
            psu_id=psu(index),
            role="aisp",
            scope="aisp",
            sca_at=now,
            refresh_expires_at=now + timedelta(days=90),
            access_expires_at=now + timedelta(hours=6),
            access_cnf=thumbprint,
            now=now,
        ),
    )


def form_request(bench: Bench, path: str, body: bytes) -> bytes:
    """One HTTP/1.1 form POST, ready to write on a connection."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{bench.port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


# --- the server ------------------------------------------------------------------------------


def start_server(
    data_dir: Path,
    port: int,
    workers: int,
    database_url: str | None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``stetgate serve`` on 127.0.0.1, issuer pinned to the address the load generator uses
    (the TPP checks the callback's ``iss`` against it). Its output goes to
    ``DATA_DIR/serve.log`` (a pipe nobody reads could fill and stop the server)."""
    env = dict(
        os.environ,
        STETGATE_DATA_DIR=str(data_dir),
        STETGATE_ISSUER=f"https://127.0.0.1:{port}",
        # The metrics listener as in production (it is what a bank runs), on a free port.
        STETGATE_METRICS_PORT=str(free_port()),
    )
    env.update(extra_env or {})
    if database_url:
        env["STETGATE_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "stetgate.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    log = data_dir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(
                f"https://127.0.0.1:{port}/health/ready", verify=context, timeout=2
            ).status_code == 200 and every_worker_accepts(process.pid, port, workers, context):
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"stetgate serve did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def every_worker_accepts(
    server_pid: int, port: int, workers: int, context: ssl.SSLContext, attempts: int = 40
) -> bool:
    """True once each of the ``workers`` holds one of up to ``attempts`` connections opened
    and kept open one after the other: a worker still importing the app accepts nothing, and
    a load started then would put every connection on the other workers for the whole run."""
    pids = worker_pids(server_pid)
    if len(pids) < workers:
        return False
    opened: list[ssl.SSLSocket] = []
    try:
        for _ in range(attempts):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            opened.append(context.wrap_socket(sock, server_hostname="127.0.0.1"))
            if all(connections_per_worker(pids, port).values()):
                return True
            time.sleep(0.02)
        return False
    except OSError:
        return False
    finally:
        for sock in opened:
            sock.close()


# --- /proc -----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn worker processes of a ``serve`` process (multiprocessing spawn children);
    with one worker uvicorn serves in the ``serve`` process itself."""
    found = []
    for pid in process_tree(server_pid)[1:]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"spawn_main" in handle.read():
                    found.append(pid)
        except OSError:
            continue
    return found or [server_pid]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (from /proc/PID/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def postgres_processes(database_name: str | None = None) -> list[int]:
    """All ``postgres`` processes, or only the backends connected to ``database_name`` (their
    process title names the database)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as handle:
                if handle.read().strip() != "postgres":
                    continue
            if database_name is not None:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if f" {database_name} ".encode() not in handle.read():
                        continue
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def box_busy_seconds() -> float:
    """CPU seconds all processes of the box have spent so far (/proc/stat, all cores)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def connections_per_worker(workers: list[int], port: int) -> dict[int, int]:
    """Established TCP connections on ``port`` held by each worker (/proc/net/tcp inodes)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    counts = {}
    for pid in workers:
        count = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        count += 1
        counts[pid] = count
    return counts


# --- running a load ----------------------------------------------------------------------------


class Start:
    """The start line shared by the parent and the load processes (see the module docstring):
    the clock starts only once every load process has opened its connections."""

    def __init__(self, context: Any) -> None:
        self._ready = context.Queue()
        self._go = context.Event()
        self._times = context.Array("d", 3)

    def ready(self) -> None:
        self._ready.put(os.getpid())

    def wait(self) -> tuple[float, tuple[float, float]]:
        if not self._go.wait(timeout=600):
            raise SystemExit("the benchmark never started")
        return self._times[0], (self._times[1], self._times[2])

    def release(self, processes: int, warmup: float, seconds: float, timeout: float) -> float:
        """Wait until ``processes`` are ready, then start them in 0.2 s; returns start_at."""
        for _ in range(processes):
            self._ready.get(timeout=timeout)
        start_at = time.time() + 0.2
        self._times[0], self._times[1], self._times[2] = (
            start_at,
            start_at + warmup,
            start_at + warmup + seconds,
        )
        self._go.set()
        return start_at


LoadFunction = Callable[[Any, Start, Any], None]
"""``(arguments, start, queue)``: see the module docstring."""


@dataclass
class Load:
    """``processes`` load processes, process ``i`` running ``function(arguments[i], …)``."""

    function: LoadFunction
    arguments: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)
    """Scenario facts reported with the result (e.g. the argon2id cost)."""
    server_env: dict[str, str] = field(default_factory=dict)
    """Settings the scenario needs on the server (e.g. the delegated login's ``oidc_*``)."""
    measured: dict[str, list[int]] = field(default_factory=dict)
    """Other processes of the scenario whose CPU is reported apart, by name (e.g. ``op``,
    the bank's OpenID Provider)."""
    stop: Callable[[], None] | None = None
    """Stops what `prepare` started besides the server (called once the run is over)."""


def run_load(
    load: Load,
    *,
    server_pid: int,
    port: int,
    warmup: float,
    seconds: float,
    database: Database,
    sample_every: float = 0.5,
    others: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Run ``load`` against the server and measure the window ``[warmup, warmup + seconds]``:
    the load processes' report, the CPU time of the server, the load generator, our
    PostgreSQL backends, all PostgreSQL processes, the proxy, ``others`` (name → pids, e.g. a
    backend service) and the whole box, each server process's RSS sampled every
    ``sample_every`` s, and the connections each worker holds."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = Start(context)
    processes = [
        context.Process(target=load.function, args=(argument, start, queue))
        for argument in load.arguments
    ]
    for process in processes:
        process.start()
    start_at = start.release(len(processes), warmup, seconds, timeout=300)
    window = (start_at + warmup, start_at + warmup + seconds)
    server = process_tree(server_pid)
    workers = worker_pids(server_pid)
    clients = [process.pid for process in processes if process.pid is not None]
    proxy = [database.proxy_pid] if database.proxy_pid else []

    def snapshot() -> dict[str, float]:
        return {
            "server": cpu_seconds(server),
            "load_generator": cpu_seconds(clients),
            "postgres_ours": cpu_seconds(postgres_processes(database.pg_name))
            if database.pg_name
            else 0.0,
            "postgres_all": cpu_seconds(postgres_processes()) if database.pg_name else 0.0,
            "proxy": cpu_seconds(proxy),
            **{name: cpu_seconds(pids) for name, pids in load.measured.items()},
            "box": box_busy_seconds(),
            **{name: cpu_seconds(pids) for name, pids in (others or {}).items()},
        }

    time.sleep(max(0.0, window[0] - time.time()))
    before = snapshot()
    per_worker = connections_per_worker(workers, port)
    rss: dict[int, list[int]] = {pid: [] for pid in server}
    while True:
        for pid in server:
            if (size := rss_kib(pid)) is not None:
                rss[pid].append(size)
        left = window[1] - time.time()
        if left <= 0:
            break
        time.sleep(min(sample_every, left))
    after = snapshot()
    collected = []
    for _ in processes:
        try:
            collected.append(queue.get(timeout=warmup + seconds + 120))
        except Exception:  # queue.Empty: a load process died; reported as an error
            collected.append({"errors": ["a load process did not report"]})
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    result = merge_reports(collected)
    result["cpu_seconds"] = {name: after[name] - before[name] for name in before}
    result["rss_kib"] = {
        str(pid): {
            "role": "worker" if pid in workers else "supervisor" if pid == server_pid else "other",
            "first": sizes[0],
            "last": sizes[-1],
            "max": max(sizes),
            "samples": sizes,
        }
        for pid, sizes in rss.items()
        if sizes
    }
    result["connections_per_worker"] = list(per_worker.values())
    result["window"] = window
    result["extra"].update(load.extra)
    return result


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    all_statuses: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    for report in reports:
        statuses.update(report.get("statuses", {}))
        all_statuses.update(report.get("all_statuses", {}))
        extra.update(report.get("extra", {}))
        latencies.extend(report.get("latencies", []))
        errors.extend(report.get("errors", []))
    return {
        "statuses": dict(statuses),
        "all_statuses": dict(all_statuses),
        "latencies": latencies,
        "errors": errors[:10],
        "error_count": len(errors),
        "extra": dict(extra),
    }


def new_report() -> dict[str, Any]:
    return {
        "statuses": Counter(),
        "all_statuses": Counter(),
        "latencies": [],
        "errors": [],
        "extra": Counter(),
    }


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


def parse_response(buffer: bytes) -> tuple[str, int] | None:
    """(status, total length) of the complete HTTP/1.1 response at the start of ``buffer``,
    or None while it is incomplete. Responses here always carry Content-Length."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    length = 0
    for line in buffer[:head_end].split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    total = head_end + 4 + length
    if len(buffer) < total:
        return None
    return buffer[9:12].decode(), total


# --- garbage-collector pauses (gc_probe/sitecustomize.py) ------------------------------------

GC_PROBE = Path(__file__).resolve().parent / "gc_probe"


def gc_probe_env(data_dir: Path) -> dict[str, str]:
    """Server environment that loads the GC probe (`gc_probe/sitecustomize.py`)."""
    folder = data_dir / "gc"
    folder.mkdir(exist_ok=True)
    path = os.pathsep.join(filter(None, [str(GC_PROBE), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "BENCH_GC_DIR": str(folder)}


def gc_pauses(data_dir: Path, window: tuple[float, float], workers: int) -> dict[str, Any]:
    """Collections that ended inside ``window``, over all server processes."""
    import json

    pauses = []
    for path in (data_dir / "gc").glob("gc-*.json"):
        with contextlib.suppress(OSError, ValueError):
            pauses += [p for p in json.loads(path.read_text()) if window[0] <= p[0] < window[1]]
    durations = sorted(p[2] for p in pauses)
    seconds = window[1] - window[0]
    return {
        "collections": len(pauses),
        "by_generation": dict(Counter(str(int(p[1])) for p in pauses)),
        "total_ms": sum(durations) * 1e3,
        "share_of_worker_time": sum(durations) / (seconds * workers),
        "max_ms": durations[-1] * 1e3 if durations else 0.0,
        "over_5ms": sum(1 for d in durations if d > 0.005),
        "gen2_ms": [round(p[2] * 1e3, 1) for p in pauses if p[1] == 2],
    }


# --- keep-alive load -------------------------------------------------------------------------


@dataclass
class KeepAliveShare:
    """One load process's share of a keep-alive load: one request list per connection."""

    port: int
    data_dir: str
    requests: list[list[bytes]]
    cycle: bool = True
    client_certificate: bool = True


@dataclass
class PerfWindow:
    """The measuring window in ``time.perf_counter()`` time (set once the parent starts)."""

    start: float = math.inf
    end: float = math.inf


class _KeepAliveConnection(asyncio.Protocol):
    def __init__(
        self,
        requests: list[bytes],
        cycle: bool,
        offset: int,
        window: PerfWindow,
        report: dict[str, Any],
        closed: asyncio.Future[None],
    ) -> None:
        self.requests = requests
        self.cycle = cycle
        self.index = offset
        self.window = window
        self.report = report
        self.closed = closed
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: Any = None
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's SSL transport is not an asyncio.Transport

    def start(self) -> None:
        self._send()

    def _finish(self) -> None:
        self.finished = True
        self.transport.close()

    def _send(self) -> None:
        if self.cycle:
            request = self.requests[self.index % len(self.requests)]
        elif self.index < len(self.requests):
            request = self.requests[self.index]
        else:
            self.report["extra"]["connections_out_of_requests"] += 1
            self._finish()
            return
        self.index += 1
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = parse_response(self.buffer)
        if parsed is None:
            return
        status, total = parsed
        self.buffer = self.buffer[total:]
        now = time.perf_counter()
        report = self.report
        report["all_statuses"][status] += 1
        if self.window.start <= now < self.window.end:
            report["statuses"][status] += 1
            report["latencies"].append(now - self.sent_at)
        if now < self.window.end:
            self._send()
        else:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self.report["errors"].append(f"connection lost: {exc!r}")
        if not self.closed.done():
            self.closed.set_result(None)


async def _keepalive(share: KeepAliveShare, start: Start) -> Any:
    context = ssl.create_default_context(cafile=f"{share.data_dir}/ca.pem")
    if share.client_certificate:
        context.load_cert_chain(f"{share.data_dir}/tpp/qwac.pem", f"{share.data_dir}/tpp/qwac.key")
    report = new_report()
    loop = asyncio.get_running_loop()
    perf_window = PerfWindow()
    protocols: list[_KeepAliveConnection] = []
    closed: list[asyncio.Future[None]] = []
    # Connect one at a time, each handshake complete before the next, so the workers' accept
    # loops share the connections (as TPPs connecting over time would).
    for index, requests in enumerate(share.requests):
        done: asyncio.Future[None] = loop.create_future()
        closed.append(done)
        try:
            _, protocol = await loop.create_connection(
                lambda r=requests, d=done, i=index: _KeepAliveConnection(  # type: ignore[misc]
                    r, share.cycle, i * 7 if share.cycle else 0, perf_window, report, d
                ),
                "127.0.0.1",
                share.port,
                ssl=context,
            )
        except OSError as error:
            report["errors"].append(f"connect: {error!r}")
            done.set_result(None)
            continue
        protocols.append(protocol)
    start.ready()
    start_at, window = await loop.run_in_executor(None, start.wait)
    to_perf = time.perf_counter() - time.time()
    perf_window.start, perf_window.end = window[0] + to_perf, window[1] + to_perf
    await asyncio.sleep(max(0.0, start_at - time.time()))
    for protocol in protocols:
        protocol.start()
    cpu = time.process_time()
    await asyncio.wait(closed, timeout=max(0.0, window[1] - time.time()) + 30)
    for protocol in protocols:
        if protocol.transport is not None and not protocol.transport.is_closing():
            report["errors"].append("connection still open 30 s after the window")
            protocol.transport.close()
    report["extra"]["load_cpu"] = time.process_time() - cpu
    return report


def keepalive_load(share: KeepAliveShare, start: Start, queue: Any) -> None:
    install_uvloop()
    report = asyncio.run(_keepalive(share, start))
    queue.put(report)


def keepalive_shares(
    port: int,
    data_dir: Path,
    requests: list[list[bytes]],
    processes: int,
    *,
    cycle: bool = True,
) -> list[KeepAliveShare]:
    """Split per-connection request lists over ``processes`` load processes."""
    return [
        KeepAliveShare(port, str(data_dir), requests[index::processes], cycle=cycle)
        for index in range(processes)
        if requests[index::processes]
    ]


# --- new connection per request ----------------------------------------------------------------


class ResumingContext(ssl.SSLContext):
    """A client context that offers ``resume`` (a previous `ssl.SSLSession`) in its next
    handshake: asyncio and uvloop call ``wrap_bio`` without a session argument."""

    resume: ssl.SSLSession | None = None

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, server_hostname, session or self.resume
        )


@dataclass
class NewConnectionShare:
    port: int
    data_dir: str
    requests: list[bytes]
    """One per slot (concurrent connection)."""
    resume: bool


class _OneRequest(asyncio.Protocol):
    def __init__(self, request: bytes, answered: asyncio.Future[str]) -> None:
        self.request = request
        self.answered = answered
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = parse_response(self.buffer)
        if parsed is not None and not self.answered.done():
            self.answered.set_result(parsed[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(exc or ConnectionError("closed before the answer"))


async def _new_connections(share: NewConnectionShare, start: Start) -> Any:
    report = new_report()
    loop = asyncio.get_running_loop()

    def context() -> ResumingContext:
        made = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
        made.load_verify_locations(f"{share.data_dir}/ca.pem")
        made.load_cert_chain(f"{share.data_dir}/tpp/qwac.pem", f"{share.data_dir}/tpp/qwac.key")
        return made

    async def slot(request: bytes, tls: ResumingContext) -> None:
        while time.time() < window[1]:
            started = time.perf_counter()
            answered: asyncio.Future[str] = loop.create_future()
            transport = None
            try:
                transport, _ = await loop.create_connection(
                    lambda a=answered: _OneRequest(request, a),  # type: ignore[misc]
                    "127.0.0.1",
                    share.port,
                    ssl=tls,
                )
                status = await asyncio.wait_for(answered, 30)
            except (OSError, TimeoutError, ConnectionError, ssl.SSLError) as error:
                report["errors"].append(f"{type(error).__name__}: {error}")
                if transport is not None:
                    transport.close()
                await asyncio.sleep(0.05)
                continue
            ssl_object = transport.get_extra_info("ssl_object")
            if share.resume and ssl_object is not None:
                tls.resume = ssl_object.session
            reused = bool(ssl_object is not None and ssl_object.session_reused)
            transport.close()
            ended = time.perf_counter()
            now = time.time()
            report["all_statuses"][status] += 1
            if window[0] <= now < window[1]:
                report["statuses"][status] += 1
                report["latencies"].append(ended - started)
                report["extra"]["handshakes_resumed" if reused else "handshakes_full"] += 1

    contexts = [context() for _ in share.requests]
    start.ready()
    start_at, window = await loop.run_in_executor(None, start.wait)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    await asyncio.wait_for(
        asyncio.gather(*(slot(r, tls) for r, tls in zip(share.requests, contexts, strict=True))),
        timeout=max(0.0, window[1] - time.time()) + 60,
    )
    report["extra"]["load_cpu"] = time.process_time() - cpu
    return report


def new_connection_load(share: NewConnectionShare, start: Start, queue: Any) -> None:
    install_uvloop()
    queue.put(asyncio.run(_new_connections(share, start)))


# --- summary -----------------------------------------------------------------------------------


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summarize(result: dict[str, Any], seconds: float, ok_statuses: tuple[str, ...]) -> None:
    """Add throughput, latency percentiles (ms), non-2xx count and CPU per operation (µs) to
    ``result``; drop the raw latencies."""
    latencies = sorted(result.pop("latencies"))
    ok = sum(n for status, n in result["statuses"].items() if status in ok_statuses)
    result["ok"] = ok
    result["throughput"] = ok / seconds
    result["non_2xx"] = sum(
        n for status, n in result["all_statuses"].items() if not status.startswith("2")
    )
    result["latency_ms"] = (
        {
            name: percentile(latencies, fraction) * 1e3
            for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))
        }
        | {"max": latencies[-1] * 1e3, "mean": sum(latencies) / len(latencies) * 1e3}
        if latencies
        else {}
    )
    result["latency_samples"] = len(latencies)
    cpu = result["cpu_seconds"]
    result["cpu_us_per_op"] = {name: cpu[name] / ok * 1e6 for name in cpu if name != "box" and ok}
    ours = sum(cpu[name] for name in cpu if name not in ("box", "postgres_all"))
    result["per_server_cpu_second"] = ok / cpu["server"] if cpu["server"] else 0.0
    result["cores_busy"] = {
        "box": cpu["box"] / seconds,
        "this_run": ours / seconds,
        "others": max(0.0, cpu["box"] - ours) / seconds,
    }
    for sizes in result["rss_kib"].values():
        del sizes["samples"]


_STANDARD_CPU = ("server", "load_generator", "postgres_ours", "postgres_all", "proxy")


def print_result(title: str, result: dict[str, Any], unit: str = "req") -> None:
    print(f"\n== {title}")
    print(
        f"{unit}/s: {result['throughput']:,.1f}   (ok {result['ok']}, statuses "
        f"{result['statuses']}, non-2xx incl. warm-up {result['non_2xx']})"
    )
    latency = result["latency_ms"]
    if latency:
        print(
            "latency ms: "
            + "  ".join(f"{name} {latency[name]:.2f}" for name in ("p50", "p90", "p99", "p999"))
            + f"  max {latency['max']:.2f}  ({result['latency_samples']} samples)"
        )
    per = result["cpu_us_per_op"]
    if per:
        print(
            f"CPU µs per {unit}: server {per['server']:.0f}, load generator "
            f"{per['load_generator']:.0f}, postgres (our backends) {per['postgres_ours']:.0f}, "
            f"postgres (all) {per['postgres_all']:.0f}, proxy {per['proxy']:.0f}"
            + "".join(f", {name} {per[name]:.0f}" for name in per if name not in _STANDARD_CPU)
        )
        print(
            f"{unit} per server CPU-second: {result['per_server_cpu_second']:,.1f} "
            "(the server's own cost; a core to itself would serve that many a second)"
        )
    busy = result["cores_busy"]
    print(
        f"cores busy: box {busy['box']:.2f} (this run {busy['this_run']:.2f}, "
        f"other processes {busy['others']:.2f})"
    )
    print(
        "RSS MiB (first/last/max): "
        + ", ".join(
            f"{info['role']} {pid}: {info['first'] / 1024:.0f}/{info['last'] / 1024:.0f}/"
            f"{info['max'] / 1024:.0f}"
            for pid, info in result["rss_kib"].items()
            if info["role"] != "other"
        )
        + f"; connections per worker {result['connections_per_worker']}"
    )
    if "gc" in result:
        gc = result["gc"]
        print(
            f"GC in the window: {gc['collections']} collections {gc['by_generation']}, "
            f"{gc['total_ms']:.0f} ms ({gc['share_of_worker_time']:.1%} of worker time), "
            f"max {gc['max_ms']:.1f} ms, {gc['over_5ms']} over 5 ms; full collections "
            f"(generation 2) ms: {gc['gen2_ms']}"
        )
    extra = {k: v for k, v in result["extra"].items() if k != "load_cpu"}
    if extra:
        print(f"notes: {extra}")
    if result["errors"]:
        print(f"client errors ({result['error_count']}): {result['errors'][:3]}")
