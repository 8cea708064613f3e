"""`stetgate report statistics` on what a real server recorded during a scripted run.

The bank serves over real mutual TLS on a frozen clock set two days back at 23:58 UTC, so the
run crosses midnight and both reported days are over when the report runs (certificates from
a QTSP on the same clock). The core-banking backend is a real HTTP server switched to fail
(503 answers) and to be slow (known latency). The test keeps its own list of what it sent and
got back, computes the expected counts, downtime and quarter rows from that list, and compares
them with the CSV written by the CLI from the database — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import os
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, func, select

from stetgate.cli import main
from stetgate.clock import FrozenClock, SystemClock
from stetgate.store.schema import statistics_availability
from tests.integration.psd2_support import ApiWorld, Tpp, build_world
from tests.support.core_banking import FaultyBackend, faulty_backend
from tests.support.pki import TestPki
from tests.support.servers import free_port

pytestmark = pytest.mark.postgres  # the additive upserts and range reads differ by dialect

IBAN = "FR7630006000011234567890189"
SLOW_SECONDS = 0.25


def two_days_back_at(hour: int, minute: int) -> datetime:
    today = SystemClock().now().date()
    return datetime.combine(today - timedelta(days=2), datetime.min.time(), UTC).replace(
        hour=hour, minute=minute
    )


@pytest.fixture
def backend() -> Iterator[FaultyBackend]:
    with faulty_backend() as server:
        yield server


@pytest.fixture
def world(
    request: pytest.FixtureRequest, database: str, tmp_path: Path, backend: FaultyBackend
) -> Iterator[ApiWorld]:
    start = two_days_back_at(23, 58)
    pki = TestPki(tmp_path / "pki", clock=FrozenClock(start - timedelta(minutes=10)))
    yield from build_world(
        request,
        pki,
        tmp_path,
        database,
        clock=FrozenClock(start),
        bank_url=backend.url,
        bank_auth="none",
        bank_timeout_ms=5000,
        bank_retries=0,
        bank_breaker_failures=1000,
        statistics_flush_seconds=0.1,
        statistics_probe_seconds=0.05,
    )


class Script:
    """What the test sent to the recorded families, and what came back."""

    def __init__(self, world: ApiWorld) -> None:
        self.world = world
        self.tpp: Tpp = world.tpp()
        self.sent: list[tuple[date, str, int]] = []

    def note(self, family: str, response: httpx.Response) -> httpx.Response:
        self.sent.append((self.world.clock.now().date(), family, response.status_code))
        return response

    def accounts(self, token: str | None) -> httpx.Response:
        return self.note("aisp", self.tpp.get("accounts", token=token))

    def wait_for_probe(self) -> None:
        """Until a probe of the current minute reached the database (the background task)."""
        minute = self.world.clock.now().replace(second=0, microsecond=0)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if probes_up(self.world.engine, minute) > 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"no probe recorded for {minute}")


def probes_up(engine: Engine, minute: datetime) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(statistics_availability.c.probes_up).where(
                statistics_availability.c.minute == minute
            )
        ).scalar()
    return int(value or 0)


def read_csv(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {(row["period"], row["family"]): row for row in csv.DictReader(handle)}


def quarter_label(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def invoke_report(
    directory: Path, first: str, last: str, out: Path, url: str | None = None
) -> Result:
    """``stetgate --data-dir DIRECTORY report statistics --from … --to … --out OUT``."""
    return CliRunner().invoke(
        main,
        [
            *("--data-dir", str(directory), "report", "statistics"),
            *("--from", first, "--to", last, "--out", str(out)),
        ],
        env={"STETGATE_DATABASE_URL": url} if url else None,
    )


def run_report(url: str, first: date, last: date, out: Path) -> None:
    result = invoke_report(out.parent / "cli", first.isoformat(), last.isoformat(), out, url)
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        str(out / "statistics-daily.csv"),
        str(out / "statistics-quarterly.csv"),
        str(out / "statistics.html"),
    ]


def test_the_report_matches_what_the_scripted_run_did(
    world: ApiWorld, backend: FaultyBackend, tmp_path: Path
) -> None:
    clock, url = world.clock, world.bank.settings.resolved_database_url
    script = Script(world)
    first_day = clock.now().date()
    aisp, cbpii = world.token("jdupont"), world.token("jdupont", "cbpii")
    bank = world.bank.client(world.tpp_certs)

    # 23:58 — everything answered; requests of every family and some outside them.
    assert bank.get("/health/ready").status_code == 200  # not an endpoint family
    assert bank.get("/psu/static/psu.css").status_code == 200  # static file: not recorded
    for _ in range(3):
        assert script.accounts(aisp).status_code == 200
    assert script.accounts(None).status_code == 401
    script.note(
        "cbpii",
        script.tpp.call(
            "POST",
            "funds-confirmations",
            token=cbpii,
            json_body={
                "paymentCoverageRequestId": "c1",
                "instructedAmount": {"currency": "EUR", "amount": "1.00"},
                "accountId": {"iban": IBAN},
            },
        ),
    )
    token = script.note(
        "token",
        bank.post(
            "/stet/psd2/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "not-a-token"},
        ),
    )
    assert token.status_code == 400
    authorize = script.note("authorization", bank.get("/stet/psd2/oauth/authorize"))
    assert 400 <= authorize.status_code < 500
    assert script.accounts(aisp).status_code == 200  # ends any run the funds check began
    script.wait_for_probe()

    # 23:59 — a slow backend: answered, after SLOW_SECONDS.
    clock.set(clock.now().replace(minute=59, second=5))
    backend.delay = SLOW_SECONDS
    for _ in range(2):
        assert script.accounts(aisp).status_code == 200
    backend.delay = 0.0
    script.wait_for_probe()

    # 00:00 of the next day: nobody there (no probe, nothing recorded).
    # 00:01 — the backend fails: five 503 in a row make the minute down (EBA GL 2.4(c)).
    clock.set(clock.now() + timedelta(minutes=2))
    second_day = clock.now().date()
    assert second_day == first_day + timedelta(days=1)
    backend.mode = "error_500"
    for _ in range(5):
        assert script.accounts(aisp).status_code == 503
    backend.mode = "ok"
    assert script.accounts(aisp).status_code == 200
    script.wait_for_probe()

    # 00:02 — all well again.
    clock.set(clock.now() + timedelta(minutes=1))
    for _ in range(2):
        assert script.accounts(aisp).status_code == 200
    script.wait_for_probe()
    bank.close()
    world.bank.stop()  # the last counts are flushed at shutdown

    out = tmp_path / "report"
    run_report(url, first_day, second_day, out)
    daily = read_csv(out / "statistics-daily.csv")
    quarterly = read_csv(out / "statistics-quarterly.csv")

    expected: Counter[tuple[str, str, str]] = Counter()
    for day, family, status in script.sent:
        for period in (day.isoformat(), quarter_label(day)):
            for name in (family, "all"):
                expected[(period, name, "requests")] += 1
                if status // 100 in (4, 5):
                    expected[(period, name, f"responses_{status // 100}xx")] += 1
    periods = {
        "daily": [first_day.isoformat(), second_day.isoformat()],
        "quarterly": sorted({quarter_label(first_day), quarter_label(second_day)}),
    }
    assert sorted({p for p, _ in daily}) == periods["daily"]
    assert sorted({p for p, _ in quarterly}) == periods["quarterly"]
    for rows in (daily, quarterly):
        for (period, family), row in rows.items():
            for column in ("requests", "responses_4xx", "responses_5xx"):
                assert int(row[column]) == expected[(period, family, column)], (
                    period,
                    family,
                    column,
                )
    assert expected[(second_day.isoformat(), "aisp", "responses_5xx")] == 5
    day2_aisp = daily[(second_day.isoformat(), "aisp")]
    assert float(day2_aisp["error_rate_5xx_percent"]) == pytest.approx(100 * 5 / 8)

    # Response times: two of the first day's AISP requests took SLOW_SECONDS or more.
    day1_aisp = daily[(first_day.isoformat(), "aisp")]
    count = int(day1_aisp["requests"])
    assert float(day1_aisp["p99_ms"]) >= SLOW_SECONDS * 1000
    assert float(day1_aisp["p50_ms"]) < SLOW_SECONDS * 1000
    assert float(day1_aisp["mean_ms"]) >= 2 * SLOW_SECONDS * 1000 / count
    assert daily[(first_day.isoformat(), "cbpii")]["mean_ms"] != ""
    assert daily[(second_day.isoformat(), "token")]["mean_ms"] == ""  # no request: no figure

    # Availability: the first day was up at 23:58 and 23:59 only; the second at 00:02 only
    # (00:00 had no probe, 00:01 had five failures in a row).
    first_all = daily[(first_day.isoformat(), "all")]
    second_all = daily[(second_day.isoformat(), "all")]
    assert (first_all["elapsed_minutes"], first_all["downtime_minutes"]) == ("1440", "1438")
    assert (second_all["elapsed_minutes"], second_all["downtime_minutes"]) == ("1440", "1439")
    assert float(first_all["uptime_percent"]) == pytest.approx(100 * 2 / 1440, abs=1e-4)
    down_total = sum(int(quarterly[(q, "all")]["downtime_minutes"]) for q in periods["quarterly"])
    assert down_total == 1438 + 1439
    html = (out / "statistics.html").read_text()
    assert html.count("<svg ") == 4 and 'class="bar"' in html


def test_to_before_from_is_refused(tmp_path: Path) -> None:
    result = invoke_report(tmp_path, "2026-04-02", "2026-04-01", tmp_path / "out")
    assert result.exit_code == 2 and "--to is before --from" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("day", ["2026-13-01", "01/04/2026", "2026-04-01T00:00", ""])
def test_a_day_not_written_yyyy_mm_dd_is_refused(tmp_path: Path, day: str) -> None:
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path), "report", "statistics", "--from", day, "--to", "2026-04-01"],
    )
    assert result.exit_code == 2, result.output


def test_a_database_not_migrated_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = invoke_report(tmp_path, "2026-04-01", "2026-04-01", tmp_path / "out", url)
    assert result.exit_code == 1 and "stetgate db upgrade" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_stetgate_serve_workers_write_their_counts_when_they_stop(
    pki: TestPki, tmp_path: Path
) -> None:
    """The real `stetgate serve` with two workers and the lifespan: a flush interval longer
    than the run, so what reaches the database is what each worker wrote at shutdown."""
    port = free_port()
    url = f"sqlite:///{tmp_path / 'served.db'}"
    env = dict(os.environ)
    env.update(
        STETGATE_DATA_DIR=str(tmp_path / "data"),
        STETGATE_DATABASE_URL=url,
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(pki.trust_dir),
        STETGATE_CRL_DIR=str(pki.crl_dir),
        STETGATE_CRL_POLL_SECONDS="0",
        STETGATE_STATISTICS_FLUSH_SECONDS="300",
        STETGATE_STATISTICS_PROBE_SECONDS="0.2",
    )
    cli = [sys.executable, "-m", "stetgate.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    first_day = SystemClock().now().date()
    log = (tmp_path / "serve.log").open("wb")  # a file, not a pipe nobody reads
    proc = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    statuses: Counter[int] = Counter()
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=5) as http:
            while True:
                try:
                    if http.get("/health/live").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
            for _ in range(12):  # no client certificate: refused, and counted
                response = http.post(
                    "/stet/psd2/oauth/token",
                    data={"grant_type": "refresh_token", "refresh_token": "x"},
                    headers={"Connection": "close"},  # spread over both workers
                )
                statuses[response.status_code] += 1
                assert http.get("/health/live").status_code == 200  # not counted
            time.sleep(0.5)  # a few probes
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-4000:]
    last_day = SystemClock().now().date()
    out = tmp_path / "report"
    run_report(url, first_day, last_day, out)
    daily = read_csv(out / "statistics-daily.csv")
    days = sorted({period for period, _ in daily})
    assert sum(int(daily[(d, "token")]["requests"]) for d in days) == 12
    assert sum(int(daily[(d, "token")]["responses_4xx"]) for d in days) == sum(
        n for status, n in statuses.items() if 400 <= status < 500
    )
    assert sum(int(daily[(d, "all")]["requests"]) for d in days) == 12
    engine = create_engine(url)
    with engine.connect() as conn:
        up, down = conn.execute(
            select(
                func.sum(statistics_availability.c.probes_up),
                func.sum(statistics_availability.c.probes_down),
            )
        ).one()
    engine.dispose()
    assert up >= 2 and down == 0  # each worker probed from its start (the minute in progress
    # is not in the report's availability yet: it has not elapsed)
