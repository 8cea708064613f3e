"""The metrics listener: GET /metrics only, plain HTTP on its own port; the revocation-data age
collector; the multiprocess folder `serve` prepares."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stetgate.clock import FrozenClock
from stetgate.eidas.crl_store import CrlSnapshot, parse_crl_file
from stetgate.observability.metrics import MULTIPROCESS_DIR_VARIABLE, count_journey
from stetgate.serving.metrics_listener import (
    MetricsListener,
    RevocationDataAge,
    prepare_multiprocess_dir,
    scrape_registry,
    start_metrics_listener,
)
from stetgate.settings import Settings
from tests.support.pki import TestPki
from tests.support.servers import bound_socket

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def listener(tmp_path: Path, pki: TestPki) -> Iterator[MetricsListener]:
    settings = Settings(data_dir=tmp_path, crl_dir=pki.crl_dir, metrics_port=1)
    started = MetricsListener("127.0.0.1", 0, scrape_registry(settings, FrozenClock(NOW)))
    started.start()
    yield started
    started.stop()


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_get_metrics_answers_the_prometheus_text_format(listener: MetricsListener) -> None:
    count_journey("authorized")
    response = httpx.get(f"http://127.0.0.1:{listener.port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = _families(response.text)
    assert "stetgate_psu_journeys" in families
    assert "stetgate_revocation_data_age_seconds" in families


@pytest.mark.parametrize(
    "path", ["/", "/metricsx", "/metrics/", "/health/live", "/METRICS", "/metrics%2F"]
)
def test_any_other_path_is_404(listener: MetricsListener, path: str) -> None:
    response = httpx.get(f"http://127.0.0.1:{listener.port}{path}", timeout=5)
    assert response.status_code == 404
    assert "stetgate_" not in response.text


def test_only_get_is_answered(listener: MetricsListener) -> None:
    response = httpx.post(f"http://127.0.0.1:{listener.port}/metrics", content=b"x", timeout=5)
    assert response.status_code == 501
    assert "stetgate_" not in response.text


def test_the_listener_is_off_with_port_zero(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, metrics_port=0)
    assert start_metrics_listener(settings, FrozenClock(NOW)) is None


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_out_of_range_is_refused_naming_the_setting(tmp_path: Path, port: int) -> None:
    with pytest.raises(ValueError, match="metrics_port"):
        Settings(data_dir=tmp_path, metrics_port=port)


def test_the_defaults_are_the_loopback_and_json() -> None:
    fields = Settings.model_fields
    assert fields["metrics_host"].default == "127.0.0.1"
    assert fields["metrics_port"].default == 9464
    assert fields["log_format"].default == "json"
    assert fields["access_log"].default is True


def _crl_snapshot(pki: TestPki, this_update: datetime, next_update: datetime | None) -> CrlSnapshot:
    (path,) = pki.crl_dir.glob("*.crl")
    (info,) = parse_crl_file(path.read_bytes(), source=str(path))
    return CrlSnapshot(
        generation=1,
        crls=(dataclasses.replace(info, this_update=this_update, next_update=next_update),),
    )


def _gauges(collector: RevocationDataAge) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(collector)
    return _families(generate_latest(registry).decode())


def test_the_age_is_the_time_since_this_update_and_next_update_the_time_left(
    pki: TestPki,
) -> None:
    snapshot = _crl_snapshot(pki, NOW - timedelta(hours=5), NOW + timedelta(days=2))
    gauges = _gauges(RevocationDataAge(lambda: snapshot, lambda: NOW))
    (name,) = (p.name for p in pki.crl_dir.glob("*.crl"))
    assert gauges["stetgate_revocation_data_age_seconds"] == [({"crl": name}, 5 * 3600.0)]
    assert gauges["stetgate_revocation_data_next_update_seconds"] == [({"crl": name}, 2 * 86400.0)]


def test_an_overdue_crl_has_a_negative_time_left(pki: TestPki) -> None:
    snapshot = _crl_snapshot(pki, NOW - timedelta(days=10), NOW - timedelta(days=3))
    gauges = _gauges(RevocationDataAge(lambda: snapshot, lambda: NOW))
    ((_, left),) = gauges["stetgate_revocation_data_next_update_seconds"]
    assert left == -3 * 86400.0


def test_without_crl_there_is_no_age_sample() -> None:
    gauges = _gauges(RevocationDataAge(lambda: CrlSnapshot(generation=0), lambda: NOW))
    assert gauges.get("stetgate_revocation_data_age_seconds", []) == []


def test_the_multiprocess_folder_starts_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, "restored after the test")
    folder = tmp_path / "run" / "prometheus"
    folder.mkdir(parents=True)
    (folder / "counter_123.db").write_bytes(b"a previous run's counts")
    prepare_multiprocess_dir(folder)
    assert list(folder.iterdir()) == []
    assert os.environ[MULTIPROCESS_DIR_VARIABLE] == str(folder)


def test_serve_stops_with_a_clear_message_when_the_metrics_port_is_taken(
    tmp_path: Path, pki: TestPki, sqlite_template: Path
) -> None:
    taken = bound_socket()
    taken.listen()
    database = tmp_path / "stetgate.db"
    database.write_bytes(sqlite_template.read_bytes())
    env = dict(
        os.environ,
        STETGATE_DATA_DIR=str(tmp_path),
        STETGATE_DATABASE_URL=f"sqlite:///{database}",
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(pki.trust_dir),
        STETGATE_METRICS_PORT=str(taken.getsockname()[1]),
    )
    with bound_socket() as main_port:
        port = main_port.getsockname()[1]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "stetgate.cli", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        taken.close()
    assert result.returncode != 0
    assert "metrics listener on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
