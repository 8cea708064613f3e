"""What the fault scripts share: a real ``stetgate serve`` under a refresh-grant load that
survives faults, and the database checks made afterwards.

*The bank*: ``stetgate serve --workers 2`` on PostgreSQL with default settings (the benchmark
set-up, benchmarks/harness.py: test QTSP, a Go-Live TPP with its QWAC, one token pair per
connection, each for its own PSU).

*The load* (`run_refresh_load`): processes of keep-alive mutual-TLS connections, each sending
``grant_type=refresh_token`` for its own pair as soon as the previous answer arrived (or at a
fixed total rate). Unlike the benchmark's generator it expects faults: a connection that breaks
(its worker killed) is reopened 50 ms later, and every answer and every broken exchange is
counted per second. For each pair it remembers the last access token acknowledged (200) and
whether an exchange was left without a 200 after it (a refresh that may or may not have
committed).

*The checks* (`check_pairs`), in the database once the load stopped:

- no pair lost or duplicated: exactly the seeded rows, none revoked;
- one active pair per (PSU, organization, role);
- every acknowledged refresh is durable: a pair's access-token digest is the one of its last
  200, unless an exchange without a 200 came after it (that refresh may have committed: the
  digest is then a newer one, never an older one);
- every acknowledged refresh was audited (``token_refreshed`` rows ≥ 200s, ≤ 200s + exchanges
  without an answer).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import ssl
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import (  # noqa: E402
    create_pg_database,
    drop_pg_database,
    every_worker_accepts,
    free_port,
    install_uvloop,
    prepare_bench,
    register_tpp,
    rss_kib,
    seed_pairs,
    start_server,
    worker_pids,
)
from sqlalchemy import create_engine, func, select  # noqa: E402

from stetgate.secrets import secret_hash  # noqa: E402
from stetgate.store.audit_events import TOKEN_REFRESHED  # noqa: E402
from stetgate.store.schema import audit_events, grants  # noqa: E402

TOKEN_PATH = "/stet/psd2/oauth/token"  # noqa: S105 - a URL path
REDIRECT = "https://tpp.example/cb"
ORG = "PSDFR-ACPR-77001"


@dataclass
class Bank:
    """A running ``stetgate serve`` and what the load needs to reach it."""

    process: Any
    port: int
    data_dir: Path
    database_url: str
    refresh_tokens: list[str]
    pair_ids: list[str]

    @property
    def workers(self) -> list[int]:
        return worker_pids(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()


@contextmanager
def running_bank(database_url: str, pairs: int, workers: int = 2) -> Iterator[Bank]:
    """``stetgate serve`` with ``workers`` on ``database_url`` (migrated here), ``pairs``
    seeded token pairs; stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="stetgate-faults-") as folder:
        data_dir = Path(folder)
        port = free_port()
        bench = prepare_bench(data_dir, port, database_url, ORG, "Faults TPP")
        register_tpp(bench, REDIRECT)
        seeded = seed_pairs(bench, pairs, lambda index: f"faults-psu-{index}")
        process = start_server(data_dir, port, workers, database_url)
        bank = Bank(
            process,
            port,
            data_dir,
            database_url,
            [pair.refresh_token for pair in seeded],  # type: ignore[attr-defined]
            [pair.grant.id for pair in seeded],  # type: ignore[attr-defined]
        )
        try:
            yield bank
        finally:
            bank.stop()


# --- the load ------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """Merged over the load processes. ``timeline[second][status]``; status ``"broken"`` is
    an exchange whose connection failed, ``"connect"`` a connection that could not open."""

    timeline: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    acked: dict[int, str] = field(default_factory=dict)
    unanswered_after_ack: set[int] = field(default_factory=set)
    failure_times: list[float] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)
    """The first answer of each non-200 status (head and body)."""
    started_at: float = 0.0

    def total(self, status: str) -> int:
        return sum(counts[status] for counts in self.timeline.values())

    def statuses(self) -> Counter[str]:
        merged: Counter[str] = Counter()
        for counts in self.timeline.values():
            merged.update(counts)
        return merged

    def ok_rate(self, first: int, last: int) -> float:
        """200s per second over seconds ``[first, last)`` of the run."""
        seconds = max(1, last - first)
        return sum(self.timeline[s]["200"] for s in range(first, last)) / seconds


def tls_context(data_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    context.load_cert_chain(data_dir / "tpp" / "qwac.pem", data_dir / "tpp" / "qwac.key")
    return context


def _request(port: int, refresh_token: str) -> bytes:
    body = urlencode(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": ORG}
    ).encode()
    return (
        f"POST {TOKEN_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _connection(
    index: int,
    refresh_token: str,
    port: int,
    context: ssl.SSLContext,
    start: float,
    stop: float,
    pace: Any,
    out: dict[str, Any],
) -> None:
    request = _request(port, refresh_token)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    timeline: dict[int, Counter[str]] = out["timeline"]
    while time.time() < stop:
        await pace()
        if writer is None:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, ssl=context), 5
                )
            except (TimeoutError, OSError, ssl.SSLError):
                now = time.time()
                timeline[int(now - start)]["connect"] += 1
                out["failures"].append(now)
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        sent_at = time.time()
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await asyncio.wait_for(reader.readexactly(length), 30)
        except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
            timeline[int(sent_at - start)]["broken"] += 1
            out["failures"].append(time.time())
            out["unanswered"].add(index)
            writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
            continue
        status = head[9:12].decode()
        timeline[int(sent_at - start)][status] += 1
        if status == "200":
            out["acked"][index] = json.loads(body)["access_token"]
            out["unanswered"].discard(index)
        else:
            out["failures"].append(time.time())
            out["samples"].setdefault(status, (head + body).decode(errors="replace")[:600])
            out["unanswered"].add(index)  # a 5xx could hide a committed refresh
        if b"connection: close" in head.lower():
            writer.close()
            reader = writer = None


def _load_process(
    indexed_tokens: list[tuple[int, str]],
    port: int,
    data_dir: Path,
    start: float,
    seconds: float,
    rate: float | None,
    queue: Any,
) -> None:
    install_uvloop()
    context = tls_context(data_dir)
    out: dict[str, Any] = {
        "timeline": defaultdict(Counter),
        "acked": {},
        "unanswered": set(),
        "failures": [],
        "samples": {},
    }
    next_slot = [start]

    async def pace() -> None:
        if rate is None:
            return
        slot = next_slot[0] = max(next_slot[0] + 1 / rate, time.time() - 0.5)
        delay = slot - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def main() -> None:
        await asyncio.sleep(max(0.0, start - time.time()))
        await asyncio.gather(
            *(
                _connection(index, token, port, context, start, start + seconds, pace, out)
                for index, token in indexed_tokens
            )
        )

    asyncio.run(main())
    out["timeline"] = {second: dict(counts) for second, counts in out["timeline"].items()}
    queue.put(out)


def run_refresh_load(
    bank: Bank,
    seconds: float,
    *,
    processes: int = 1,
    rate: float | None = None,
    during: Any = None,
) -> LoadResult:
    """Refresh load for ``seconds`` (all pairs, split over ``processes``); ``rate`` caps the
    total requests per second. ``during(start_time)`` runs in this process while the load
    goes (the fault, or RSS sampling)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.time() + 1.0
    tokens = list(enumerate(bank.refresh_tokens))
    shares = [tokens[i::processes] for i in range(processes)]
    share_rate = None if rate is None else rate / processes
    children = [
        context.Process(
            target=_load_process,
            args=(share, bank.port, bank.data_dir, start, seconds, share_rate, queue),
        )
        for share in shares
    ]
    for child in children:
        child.start()
    if during is not None:
        during(start)
    result = LoadResult(started_at=start)
    for _ in children:
        part = queue.get(timeout=seconds + 120)
        for second, counts in part["timeline"].items():
            result.timeline[second].update(counts)
        result.acked.update(part["acked"])
        result.unanswered_after_ack |= part["unanswered"]
        result.failure_times.extend(part["failures"])
        for status, sample in part["samples"].items():
            result.samples.setdefault(status, sample)
    for child in children:
        child.join(timeout=30)
    result.failure_times.sort()
    return result


# --- the checks ----------------------------------------------------------------------------------


@dataclass
class PairCheck:
    rows: int
    seeded: int
    missing: int
    unexpected: int
    revoked: int
    duplicated_active: int
    durable: int
    newer_unacknowledged: int
    lost_acknowledged: int
    audited: int
    acknowledged: int
    unanswered: int

    @property
    def ok(self) -> bool:
        return (
            self.rows == self.seeded
            and self.missing == 0
            and self.unexpected == 0
            and self.revoked == 0
            and self.duplicated_active == 0
            and self.lost_acknowledged == 0
            and self.acknowledged <= self.audited <= self.acknowledged + self.unanswered
        )

    def lines(self) -> list[str]:
        return [
            f"pairs in the database: {self.rows} (seeded {self.seeded}; missing {self.missing}, "
            f"unexpected {self.unexpected}, revoked {self.revoked})",
            f"(PSU, organization, role) with more than one active pair: {self.duplicated_active}",
            f"acknowledged refreshes durable: {self.durable} pairs at their last 200; "
            f"{self.newer_unacknowledged} at a newer refresh whose answer was lost; "
            f"LOST acknowledged: {self.lost_acknowledged}",
            f"token_refreshed audit rows: {self.audited} (200s: {self.acknowledged}, exchanges "
            f"without an answer or with an error: {self.unanswered})",
            "database check: " + ("OK" if self.ok else "FAILED"),
        ]


def check_pairs(bank: Bank, load: LoadResult, *, audited_before: int = 0) -> PairCheck:
    engine = create_engine(bank.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(grants.c.id, grants.c.access_hash, grants.c.revoked_at)
            ).all()
            duplicated = conn.execute(
                select(func.count()).select_from(
                    select(grants.c.psu_id)
                    .where(grants.c.revoked_at.is_(None))
                    .group_by(grants.c.psu_id, grants.c.org_id, grants.c.role)
                    .having(func.count() > 1)
                    .subquery()
                )
            ).scalar_one()
    finally:
        engine.dispose()
    audited = audited_refreshes(bank)
    by_id = {row.id: row for row in rows}
    seeded = set(bank.pair_ids)
    durable = newer = lost = 0
    for index, pair_id in enumerate(bank.pair_ids):
        row = by_id.get(pair_id)
        token = load.acked.get(index)
        if row is None or token is None:
            continue
        if row.access_hash == secret_hash(token):
            durable += 1
        elif index in load.unanswered_after_ack:
            newer += 1
        else:
            lost += 1
    statuses = load.statuses()
    unanswered = sum(n for status, n in statuses.items() if status != "200")
    return PairCheck(
        rows=len(rows),
        seeded=len(seeded),
        missing=len(seeded - by_id.keys()),
        unexpected=len(by_id.keys() - seeded),
        revoked=sum(1 for row in rows if row.revoked_at is not None),
        duplicated_active=int(duplicated),
        durable=durable,
        newer_unacknowledged=newer,
        lost_acknowledged=lost,
        audited=int(audited) - audited_before,
        acknowledged=statuses["200"],
        unanswered=unanswered,
    )


def audited_refreshes(bank: Bank) -> int:
    """``token_refreshed`` audit rows so far (to check a later load alone)."""
    engine = create_engine(bank.database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(audit_events)
                    .where(audit_events.c.event == TOKEN_REFRESHED)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def timeline_lines(load: LoadResult, marks: dict[int, str] | None = None) -> list[str]:
    """One line per second: 200s, other statuses, broken exchanges."""
    marks = marks or {}
    lines = [f"{'s':>4} {'200':>7}  other"]
    for second in sorted(load.timeline):
        counts = load.timeline[second]
        other = ", ".join(f"{s}×{n}" for s, n in sorted(counts.items()) if s != "200")
        mark = f"  <- {marks[second]}" if second in marks else ""
        lines.append(f"{second:>4} {counts['200']:>7}  {other}{mark}")
    return lines


@dataclass(frozen=True)
class Recovery:
    """Whether service resumed by itself: every one of the last 3 s answered refreshes, and
    none failed. The rates are information: after a worker is killed its connections reopen
    on the survivor, which then serves them all until they are reopened again, and on a
    shared box the rate moves with the neighbours' load."""

    before_rate: float
    after_rate: float
    tail_failures: int
    tail_silent_seconds: int

    @property
    def resumed(self) -> bool:
        return self.tail_failures == 0 and self.tail_silent_seconds == 0

    def lines(self) -> list[str]:
        return [
            f"200/s before the fault: {self.before_rate:.0f}; in the last 5 s: "
            f"{self.after_rate:.0f}",
            f"service resumed by itself: {'yes' if self.resumed else 'NO'} (last 3 s: "
            f"{self.tail_failures} failures, {self.tail_silent_seconds} seconds without a 200)",
        ]


def recovery(load: LoadResult, fault_second: int, seconds: float) -> Recovery:
    end = int(seconds)
    tail = range(end - 3, end)
    failures = sum(n for s in tail for st, n in load.timeline[s].items() if st != "200")
    silent = sum(1 for s in tail if load.timeline[s]["200"] == 0)
    return Recovery(load.ok_rate(1, fault_second), load.ok_rate(end - 5, end), failures, silent)


def outage_seconds(load: LoadResult, fault_at: float) -> tuple[int, float]:
    """Failed exchanges after ``fault_at`` and the time from the fault to the last one."""
    after = [t for t in load.failure_times if t >= fault_at - 0.05]
    if not after:
        return 0, 0.0
    return len(after), after[-1] - fault_at


def server_log_lines(bank: Bank, *needles: str) -> dict[str, int]:
    text = (bank.data_dir / "serve.log").read_text(errors="replace")
    return {needle: text.count(needle) for needle in needles}


def rss_of(pids: list[int]) -> dict[int, int | None]:
    return {pid: rss_kib(pid) for pid in pids}


__all__ = [
    "Bank",
    "LoadResult",
    "PairCheck",
    "Recovery",
    "audited_refreshes",
    "check_pairs",
    "create_pg_database",
    "drop_pg_database",
    "every_worker_accepts",
    "outage_seconds",
    "recovery",
    "rss_of",
    "run_refresh_load",
    "running_bank",
    "server_log_lines",
    "timeline_lines",
    "tls_context",
]
