"""The end-to-end benchmark scenarios, each through a real ``stetgate serve`` process
(`harness`), and the command line the single-scenario scripts share.

- ``refresh``: ``POST /token`` ``grant_type=refresh_token``; keep-alive mTLS, one token pair
  per connection;
- ``code_exchange``: ``POST /token`` ``grant_type=authorization_code`` with a fresh code each
  time (codes seeded beforehand, each used once); keep-alive mTLS;
- ``new_connection``: a new mTLS connection (full handshake), one refresh grant, close;
- ``new_connection_resumed``: the same, offering the slot's previous TLS session;
- ``cinematic``: the whole "get your token" cinematic (PSU pages with the argon2id password
  check and TOTP, consent, code exchange), threads driving `stetgate.tpp`;
- ``cinematic_oidc``: the same with the PSU's login delegated to the bank's OpenID Provider
  (the node ``oidc-provider`` of `stetgate.demo.openid_provider`, on the same box; not in
  `SCENARIOS`, the ``run_all.py`` set, as it needs node and npm);
- ``accounts``: signed ``GET /stet/psd2/v1.4.2/accounts`` (RSA-2048 QSealC signature, PSU
  present); keep-alive mTLS, pre-signed requests;
- ``introspection``: ``POST /introspect`` of an access token by the TPP it was issued to;
  keep-alive mTLS.

Nothing is weakened: default settings (``--server-env`` changes them for an experiment), the
data set-up uses the product's own repository functions, and every request is a request a TPP
would send. Set-up happens before the clock starts (codes and PSUs seeded, requests signed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from harness import (
    DATABASES,
    PG_ADMIN_URL,
    Bench,
    Load,
    NewConnectionShare,
    Start,
    database,
    database_label,
    form_request,
    free_port,
    gc_pauses,
    gc_probe_env,
    keepalive_load,
    keepalive_shares,
    new_connection_load,
    new_report,
    prepare_bench,
    print_result,
    register_tpp,
    run_load,
    seed_pairs,
    seed_rows,
    start_server,
    summarize,
)
from latency_proxy import stop_process
from sqlalchemy import insert

from stetgate.clock import SystemClock
from stetgate.demo import openid_provider
from stetgate.demo.bank import DemoBank
from stetgate.demo.psu_directory import password_hasher
from stetgate.demo.seed import seed_demo_bank
from stetgate.demo.totp import decode_totp_secret, new_totp_secret, time_step, totp_at
from stetgate.eidas import parse_certificate
from stetgate.httpsig import required_signed_headers, sign_request
from stetgate.keys import InstanceKeys, load_master_key
from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.oauth.codes import issue_authorization_code
from stetgate.oauth.introspect import INTROSPECT_PATH
from stetgate.oauth.token_endpoint import TOKEN_PATH
from stetgate.oidc_login.pages import CALLBACK_PATH
from stetgate.psd2.consents import Consent, replace_consent
from stetgate.store.schema import psus
from stetgate.tpp.client import StetBankClient, TppCredentials
from stetgate.tpp.psu_robot import PsuRobot

ORG = "PSDFR-ACPR-BENCH1"
CALLBACK = "https://127.0.0.1/cb"
ACCOUNTS_PATH = "/stet/psd2/v1.4.2/accounts"
ACCOUNTS_PSU = "jdupont"
PASSWORD = "bench-Password-2024!"
OP_FOLDER = Path(__file__).resolve().parents[1] / "var" / "oidc-op"
"""Where the demo OP is installed (``npm ci``), shared with the tests (git ignores var/)."""


@dataclass
class Options:
    connections: int = 64
    """Concurrent connections (threads for the cinematic)."""
    client_processes: int = 1
    """Load processes for the keep-alive and new-connection scenarios."""
    seconds: float = 10.0
    warmup: float = 2.0
    presigned: int = 2000
    """Distinct pre-signed ``GET /accounts`` requests (RSA signing ~1 ms each)."""
    code_rate: float = 3000.0
    """Codes seeded per second of the run (each is used once; a connection that runs out
    stops and is reported as ``connections_out_of_requests``)."""
    psus: int = 3000
    """Cinematic PSUs: each TOTP step (30 s) is accepted once per PSU."""
    cinematic_processes: int = 2


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    unit: str
    prepare: Callable[[Bench, Options], Load]
    ok_statuses: tuple[str, ...] = ("200",)


# --- token endpoint ----------------------------------------------------------------------------


def _refresh_body(refresh_token: str) -> bytes:
    return urlencode(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": ORG}
    ).encode()


def _pairs(bench: Bench, count: int) -> list[Any]:
    register_tpp(bench, CALLBACK)
    return seed_pairs(bench, count, lambda index: f"bench-psu-{index}")


def prepare_refresh(bench: Bench, options: Options) -> Load:
    pairs = _pairs(bench, options.connections)
    requests = [
        [form_request(bench, TOKEN_PATH, _refresh_body(pair.refresh_token))] for pair in pairs
    ]
    shares = keepalive_shares(bench.port, bench.data_dir, requests, options.client_processes)
    return Load(keepalive_load, list(shares))


def prepare_code_exchange(bench: Bench, options: Options) -> Load:
    """Codes as ``/authorize`` issues them after consent (`issue_authorization_code`), one
    PSU each (so no earlier pair is revoked), valid for an hour."""
    register_tpp(bench, CALLBACK)
    count = max(
        options.connections * 4,
        math.ceil(options.code_rate * (options.warmup + options.seconds + 2)),
    )
    auth = AuthorizationRequest(ORG, CALLBACK, "aisp", None, None, None)
    codes = seed_rows(
        bench,
        count,
        lambda conn, index, now: issue_authorization_code(
            conn,
            auth,
            org_id=ORG,
            psu_id=f"code-psu-{index}",
            sca_at=now,
            now=now,
            ttl_seconds=3600,
        ),
    )
    requests = [
        form_request(
            bench,
            TOKEN_PATH,
            urlencode(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": CALLBACK,
                    "client_id": ORG,
                }
            ).encode(),
        )
        for code in codes
    ]
    per_connection = [
        requests[index :: options.connections] for index in range(options.connections)
    ]
    shares = keepalive_shares(
        bench.port, bench.data_dir, per_connection, options.client_processes, cycle=False
    )
    return Load(keepalive_load, list(shares), {"codes_seeded": count})


def _new_connection(resume: bool) -> Callable[[Bench, Options], Load]:
    def prepare(bench: Bench, options: Options) -> Load:
        pairs = _pairs(bench, options.connections)
        requests = [form_request(bench, TOKEN_PATH, _refresh_body(p.refresh_token)) for p in pairs]
        processes = options.client_processes
        shares = [
            NewConnectionShare(bench.port, str(bench.data_dir), requests[i::processes], resume)
            for i in range(processes)
            if requests[i::processes]
        ]
        return Load(new_connection_load, list(shares))

    return prepare


def prepare_introspection(bench: Bench, options: Options) -> Load:
    pairs = _pairs(bench, options.connections)
    requests = [
        [
            form_request(
                bench,
                INTROSPECT_PATH,
                urlencode({"token": pair.access_token, "token_type_hint": "access_token"}).encode(),
            )
        ]
        for pair in pairs
    ]
    shares = keepalive_shares(bench.port, bench.data_dir, requests, options.client_processes)
    return Load(keepalive_load, list(shares))


# --- resource API --------------------------------------------------------------------------------


def prepare_accounts(bench: Bench, options: Options) -> Load:
    """Demo bank (seed 1), the TPP with its QWAC and QSealC, an access token bound to the QWAC
    and a consent covering every account of the PSU; ``options.presigned`` requests, each
    with its own ``X-Request-ID``, signed with the QSealC before the clock starts."""
    register_tpp(bench, CALLBACK, with_qsealc=True, grant_types=("authorization_code",))
    seed_demo_bank(bench.settings, 1, now=SystemClock().now())
    engine = bench.engine()
    accounts = [a.resource_id for a in DemoBank(engine).accounts_of(ACCOUNTS_PSU)]
    with engine.begin() as conn:
        replace_consent(
            conn,
            ACCOUNTS_PSU,
            ORG,
            Consent(frozenset(accounts), frozenset(accounts), True, True),
            datetime.now(UTC),
        )
    engine.dispose()
    (pair,) = seed_pairs(bench, 1, lambda _: ACCOUNTS_PSU)
    signed = presign_accounts(bench.tpp_dir, pair.access_token, options.presigned)
    requests = [signed] * options.connections
    shares = keepalive_shares(bench.port, bench.data_dir, requests, options.client_processes)
    return Load(keepalive_load, list(shares))


def presign_accounts(tpp_dir: Path, token: str, count: int) -> list[bytes]:
    import uuid

    key = serialization.load_pem_private_key((tpp_dir / "qsealc.key").read_bytes(), None)
    assert isinstance(key, RSAPrivateKey)
    seal = parse_certificate((tpp_dir / "qsealc.pem").read_bytes())
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
            "GET", ACCOUNTS_PATH, headers, key, key_id, required_signed_headers(headers, b"")
        )
        lines = [f"GET {ACCOUNTS_PATH} HTTP/1.1", "Host: localhost"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        requests.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return requests


# --- whole cinematic -------------------------------------------------------------------------


def password_check_seconds(rounds: int = 7) -> float:
    """Median CPU time of one `password_hasher().verify` (the login's argon2id check)."""
    hasher = password_hasher()
    stored = hasher.hash(PASSWORD)
    timings = []
    for _ in range(rounds):
        started = time.process_time()
        hasher.verify(stored, PASSWORD)
        timings.append(time.process_time() - started)
    return statistics.median(timings)


def prepare_cinematic(bench: Bench, options: Options) -> Load:
    """The TPP (redirect URI ``https://127.0.0.1/cb``, never fetched) and ``options.psus``
    PSUs inserted directly: one argon2id hash of a shared password (hashing each PSU would
    take minutes) and one TOTP secret each, encrypted with the instance key exactly as
    `stetgate.demo.psu_directory.DatabasePsuDirectory` stores it. A TOTP step is accepted
    once per PSU (RFC 6238 §5.2), so each load thread owns a share of the PSUs and uses each
    at most once per 30 s step; a thread that runs out waits (reported as ``psu_waits``)."""
    register_tpp(bench, CALLBACK)
    threads = options.connections
    count = max(options.psus, threads * 4)
    fernet = InstanceKeys.from_master(load_master_key(None, bench.data_dir)).totp_fernet
    password_hash = password_hasher().hash(PASSWORD)
    now = datetime.now(UTC)
    people = [(f"bench-psu-{index:05d}", new_totp_secret()) for index in range(count)]
    engine = bench.engine()
    with engine.begin() as conn:
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
    argon2 = password_check_seconds()
    return Load(
        cinematic_load,
        _cinematic_arguments(bench, options, "local", people),
        {"argon2id_verify_ms": round(argon2 * 1e3, 1)},
    )


def _cinematic_arguments(
    bench: Bench, options: Options, login: str, people: list[tuple[str, str]]
) -> list[tuple[str, str, str, list[list[tuple[str, str]]]]]:
    """One argument per load process: its threads' shares of `people`."""
    threads = options.connections
    per_thread = len(people) // threads
    shares = [people[i * per_thread : (i + 1) * per_thread] for i in range(threads)]
    processes = max(1, min(options.cinematic_processes, threads))
    base_url = f"https://127.0.0.1:{bench.port}"
    return [(base_url, str(bench.data_dir), login, shares[i::processes]) for i in range(processes)]


def prepare_cinematic_oidc(bench: Bench, options: Options) -> Load:
    """Delegated PSU login (docs/operations.md#delegated-psu-login-openid-connect): the demo
    OP (`stetgate.demo.openid_provider`, node ``oidc-provider``) on its own port with
    stetgate registered as a ``client_secret_basic`` client (a fresh secret per run), the
    server configured with the ``oidc_*`` settings, and the TPP. Per cinematic the OP serves
    the authorization request, its login page, the login post, the resumed authorization
    (→ stetgate's callback) and stetgate's token request (an RS256 ID token). No PSU rows:
    the PSUs are the OP's (`psus.find` misses, as for a bank whose directory is the OP's);
    no TOTP step limit, so no PSU ever waits. The OP's CPU is reported apart (``op``)."""
    register_tpp(bench, CALLBACK)
    try:
        node = openid_provider.install(OP_FOLDER)
    except openid_provider.OpUnavailable as exc:
        raise SystemExit(f"cinematic_oidc: {exc}") from None
    config = openid_provider.OpConfig(
        free_port(),
        f"https://127.0.0.1:{bench.port}{CALLBACK_PATH}",
        "stetgate",
        client_secret=secrets.token_urlsafe(24),
    )
    op = openid_provider.OpProcess(node, OP_FOLDER, config, log=bench.data_dir / "op.log")
    op.start()
    assert op.pid is not None
    count = max(options.psus, options.connections * 4)
    people = [(f"bench-psu-{index:05d}", "") for index in range(count)]
    return Load(
        cinematic_load,
        _cinematic_arguments(bench, options, "oidc", people),
        server_env={
            "STETGATE_OIDC_ISSUER": config.issuer,
            "STETGATE_OIDC_CLIENT_ID": config.client_id,
            "STETGATE_OIDC_CLIENT_SECRET": config.client_secret or "",
            "STETGATE_OIDC_ACR_VALUES": f'["{openid_provider.STRONG_ACR}"]',
        },
        measured={"op": [op.pid]},
        stop=op.stop,
    )


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


Robots = Callable[[float], PsuRobot | None]
"""The next cinematic's PSU robot, or None when none is free before the deadline."""


def _local_robots(pool: PsuPool) -> Robots:
    """Password + TOTP: each PSU once per TOTP step."""

    def next_robot(deadline: float) -> PsuRobot | None:
        taken = pool.take(deadline)
        if taken is None:
            return None
        index, psu_id, key = taken

        def otp() -> str:
            at = datetime.now(UTC)
            pool.last_step[index] = time_step(at)
            return totp_at(key, at)

        return PsuRobot(psu_id, PASSWORD, otp=otp, method="totp")

    return next_robot


def _delegated_robots(people: list[tuple[str, str]]) -> Robots:
    """At the OP's login page: the PSU's login and the strong ``acr`` the OP asserts."""
    cycle = itertools.cycle(psu_id for psu_id, _ in people)

    def next_robot(_deadline: float) -> PsuRobot:
        psu_id = next(cycle)
        values = {"login": psu_id, "acr": openid_provider.STRONG_ACR, "amr": "pwd otp"}
        return PsuRobot(psu_id, "", form_values=values)

    return next_robot


def _cinematic_thread(
    base_url: str,
    data_dir: Path,
    robots: Robots,
    start_at: float,
    window: tuple[float, float],
    report: dict[str, Any],
    lock: threading.Lock,
) -> None:
    """Cinematics one after the other: `StetBankClient` (one keep-alive mTLS client, like a
    TPP back end) and `PsuRobot` walking the PSU pages in a fresh browser (new
    ``httpx.Client``: new TLS session, no cookies) each time."""
    import httpx

    browser_tls = httpx.create_ssl_context(verify=str(data_dir / "ca.pem"))
    tpp = StetBankClient(
        base_url, TppCredentials.from_directory(data_dir / "tpp"), ORG, ca_file=data_dir / "ca.pem"
    )
    time.sleep(max(0.0, start_at - time.time()))
    try:
        while time.time() < window[1]:
            robot = robots(window[1])
            if robot is None:
                break
            started = time.perf_counter()
            error = None
            try:
                with httpx.Client(verify=browser_tls, timeout=30) as browser:
                    request = tpp.authorization_request("aisp", CALLBACK)
                    callback = robot.walk(browser, request.url, CALLBACK)
                tokens = tpp.exchange_code(request, callback, expected_issuer=base_url)
                if not (tokens.access_token and tokens.refresh_token):
                    error = "no token"
            except Exception as failure:  # counted and reported; the load goes on
                error = f"{type(failure).__name__}: {str(failure)[:160]}"
            ended = time.perf_counter()
            status = "200" if error is None else "ERR"
            with lock:
                report["all_statuses"][status] += 1
                if error is not None:
                    report["errors"].append(error)
                if window[0] <= time.time() < window[1]:
                    report["statuses"][status] += 1
                    if error is None:
                        report["latencies"].append(ended - started)
    finally:
        tpp.close()


def cinematic_load(
    argument: tuple[str, str, str, list[list[tuple[str, str]]]], start: Start, queue: Any
) -> None:
    """``argument``: base URL, data folder, ``local`` or ``oidc`` login, one share of PSUs
    per thread."""
    base_url, data_dir, login, shares = argument
    report = new_report()
    lock = threading.Lock()
    pools = [PsuPool(share) for share in shares] if login == "local" else []
    robots = [_local_robots(pool) for pool in pools] or [_delegated_robots(s) for s in shares]
    start.ready()
    start_at, window = start.wait()
    threads = [
        threading.Thread(
            target=_cinematic_thread,
            args=(base_url, Path(data_dir), next_robot, start_at, window, report, lock),
            daemon=True,
        )
        for next_robot in robots
    ]
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, window[1] - time.time()) + 60)
    report["extra"]["load_cpu"] = time.process_time() - cpu
    if pools:
        report["extra"]["psu_waits"] = sum(pool.waits for pool in pools)
    queue.put(report)


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("refresh", "refresh grant (keep-alive mTLS)", "grants", prepare_refresh),
        Scenario(
            "code_exchange",
            "authorization-code exchange (keep-alive mTLS)",
            "grants",
            prepare_code_exchange,
        ),
        Scenario(
            "new_connection",
            "new mTLS connection + refresh grant, full handshake",
            "grants",
            _new_connection(resume=False),
        ),
        Scenario(
            "new_connection_resumed",
            "new mTLS connection + refresh grant, TLS session resumption offered",
            "grants",
            _new_connection(resume=True),
        ),
        Scenario(
            "cinematic",
            "whole cinematic (local argon2id password check + TOTP)",
            "cinematics",
            prepare_cinematic,
        ),
        Scenario("accounts", "signed GET /accounts (keep-alive mTLS)", "req", prepare_accounts),
        Scenario(
            "introspection", "token introspection (keep-alive mTLS)", "req", prepare_introspection
        ),
    )
}
DELEGATED_CINEMATIC = Scenario(
    "cinematic_oidc",
    "whole cinematic, PSU login delegated to the bank's OpenID Provider (node oidc-provider "
    "on the same box)",
    "cinematics",
    prepare_cinematic_oidc,
)
ALL_SCENARIOS = {**SCENARIOS, DELEGATED_CINEMATIC.name: DELEGATED_CINEMATIC}
"""`SCENARIOS` (what run_all.py runs) and those needing more than Python (node)."""


def run_scenario(
    scenario: Scenario,
    kind: str,
    workers: int,
    options: Options,
    *,
    rtt_ms: float = 1.0,
    pg_admin_url: str = PG_ADMIN_URL,
    server_env: dict[str, str] | None = None,
    gc_probe: bool = False,
) -> dict[str, Any]:
    """Set up, start the server, load it, measure, stop; the summarized result. With
    ``gc_probe`` the result also has the server's garbage-collector pauses in the window."""
    with (
        database(kind, pg_admin_url=pg_admin_url, rtt_ms=rtt_ms) as db,
        tempfile.TemporaryDirectory(prefix=f"stetgate-{scenario.name}-") as folder,
    ):
        port = free_port()
        bench = prepare_bench(Path(folder), port, db.seed_url, ORG)
        load = scenario.prepare(bench, options)
        try:
            env = {**load.server_env, **(server_env or {})}
            if gc_probe:
                env.update(gc_probe_env(bench.data_dir))
            server = start_server(bench.data_dir, port, workers, db.server_url, env)
            try:
                result = run_load(
                    load,
                    server_pid=server.pid,
                    port=port,
                    warmup=options.warmup,
                    seconds=options.seconds,
                    database=db,
                )
                if gc_probe:
                    time.sleep(1.2)  # the probe writes once a second
                    result["gc"] = gc_pauses(bench.data_dir, result["window"], workers)
            finally:
                stop_process(server)
        finally:
            if load.stop is not None:
                load.stop()
    summarize(result, options.seconds, scenario.ok_statuses)
    result.update(
        scenario=scenario.name,
        database=kind,
        database_label=database_label(kind, rtt_ms),
        workers=workers,
        connections=options.connections,
        seconds=options.seconds,
        warmup=options.warmup,
    )
    return result


def result_title(scenario: Scenario, result: dict[str, Any]) -> str:
    return (
        f"{scenario.title}: {result['database_label']}, {result['workers']} worker(s), "
        f"{result['connections']} connections, {result['seconds']:g} s after "
        f"{result['warmup']:g} s warm-up"
    )


def add_common_arguments(
    parser: argparse.ArgumentParser, *, connections: int = 64, sweep: bool = False
) -> None:
    """The options every benchmark command takes; with ``sweep``, ``--workers`` and
    ``--connections`` are comma-separated lists."""
    if sweep:
        parser.add_argument("--workers", default="1,2", help="comma-separated")
        parser.add_argument("--connections", default="64,256", help="comma-separated")
    else:
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rtt-ms", type=float, default=1.0, help="postgresql-proxy round trip")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument(
        "--gc-probe", action="store_true", help="record the server's GC pauses (gc_probe/)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="STETGATE_X=VALUE",
        help="extra server setting for an experiment (repeatable)",
    )


def server_env(values: list[str]) -> dict[str, str]:
    pairs = dict(value.split("=", 1) for value in values)
    for name in pairs:
        if not name.startswith("STETGATE_"):
            raise SystemExit(f"--server-env takes STETGATE_* settings, not {name}")
    return pairs


def single_scenario_main(
    name: str,
    description: str | None,
    *,
    variants: tuple[str, dict[str, str]] | None = None,
    **defaults: Any,
) -> None:
    """The command line of a one-scenario script (refresh_grants.py, accounts.py, …).
    ``variants``: an option choosing the scenario, ``(flag, {choice: scenario name})``, the
    first choice the default (cinematics.py's ``--login local|oidc``)."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    if variants is not None:
        flag, choices = variants
        parser.add_argument(f"--{flag}", choices=list(choices), default=next(iter(choices)))
    parser.add_argument(
        "--database",
        choices=[*DATABASES, "both", "all"],
        default=defaults.pop("database", "both"),
        help="both: sqlite and postgresql; all: also postgresql-proxy",
    )
    add_common_arguments(parser, connections=defaults.pop("connections", 64))
    parser.add_argument("--json", type=Path, help="also write the results (a list) here")
    for flag, default in defaults.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args()
    options = Options(
        connections=args.connections,
        client_processes=args.client_processes,
        seconds=args.seconds,
        warmup=args.warmup,
        **{flag: getattr(args, flag) for flag in defaults},
    )
    kinds = {
        "both": ["sqlite", "postgresql"],
        "all": list(DATABASES),
    }.get(args.database, [args.database])
    if variants is not None:
        name = variants[1][getattr(args, variants[0])]
    scenario = ALL_SCENARIOS[name]
    results = []
    for kind in kinds:
        result = run_scenario(
            scenario,
            kind,
            args.workers,
            options,
            rtt_ms=args.rtt_ms,
            pg_admin_url=args.pg_admin_url,
            server_env=server_env(args.server_env),
            gc_probe=args.gc_probe,
        )
        print_result(result_title(scenario, result), result, scenario.unit)
        results.append(result)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))


__all__ = [
    "ALL_SCENARIOS",
    "SCENARIOS",
    "Options",
    "Scenario",
    "run_scenario",
    "single_scenario_main",
]
