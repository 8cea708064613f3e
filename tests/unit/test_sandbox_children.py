"""The sandbox runs the deployment shape: the gateway's resource API reads the demo ledger over
HTTP from the core-banking child, not from its own database."""

from __future__ import annotations

from pathlib import Path

from stetgate.sandbox import sandbox_children
from stetgate.settings import Settings


def test_the_gateway_reads_core_banking_from_the_core_banking_child(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, port=9443, enable_demo_pages=True)
    children = {child.name: child for child in sandbox_children(settings, 9444, 9445)}
    assert list(children) == ["core-banking", "bank", "demo-tpp"]
    core, bank = children["core-banking"], children["bank"]
    assert core.port == 9445
    assert "9445" in core.argv
    env = dict(bank.env)
    assert env["STETGATE_BANK_URL"] == core.url == "https://localhost:9445"
    assert env["STETGATE_BANK_AUTH"] == "none"
    assert env["STETGATE_BANK_CA_FILE"] == str(tmp_path / "ca.pem")
    assert core.ready_url.endswith("/core-banking/v1/health")


def test_the_sandbox_settings_themselves_stay_in_process(tmp_path: Path) -> None:
    """Only the gateway child gets bank_url; the sandbox's own settings (seeding, set-up) are
    unchanged."""
    settings = Settings(data_dir=tmp_path)
    sandbox_children(settings)
    assert settings.bank_url is None


def test_the_sandbox_bank_has_no_metrics_listener_and_text_logs_by_default(
    tmp_path: Path,
) -> None:
    children = {child.name: child for child in sandbox_children(Settings(data_dir=tmp_path))}
    env = dict(children["bank"].env)
    assert env["STETGATE_METRICS_PORT"] == "0"
    assert env["STETGATE_LOG_FORMAT"] == "text"


def test_metrics_and_log_format_asked_for_reach_the_sandbox_bank(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, metrics_port=19464, log_format="json")
    children = {child.name: child for child in sandbox_children(settings)}
    env = dict(children["bank"].env)
    assert env["STETGATE_METRICS_PORT"] == "19464"
    assert env["STETGATE_LOG_FORMAT"] == "json"
