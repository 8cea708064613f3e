"""The sandbox runs the deployment shape: the gateway's resource API reads the demo ledger over
HTTP from the core-banking child, not from its own database; with ``--delegated-login`` the demo
OP is a child of its own and the gateway's ``oidc_*`` settings point at it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stetgate.demo import openid_provider
from stetgate.demo.openid_provider import STRONG_ACR
from stetgate.oidc_login.pages import CALLBACK_PATH
from stetgate.sandbox import DelegatedLogin, sandbox_children
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


def test_delegated_login_adds_the_op_first_and_points_the_gateway_at_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, port=9443, enable_demo_pages=True)
    delegated = DelegatedLogin(9446, "/usr/bin/node", "s3cret-for-this-start")
    children = {c.name: c for c in sandbox_children(settings, 9444, 9445, delegated)}
    assert list(children) == ["openid-provider", "core-banking", "bank", "demo-tpp"]
    op, bank = children["openid-provider"], children["bank"]
    assert op.argv == ["/usr/bin/node", str(tmp_path / "oidc-op" / "server.js")]
    assert (op.port, op.host, op.url) == (9446, "127.0.0.1", "http://127.0.0.1:9446")
    assert op.ready_url == "http://127.0.0.1:9446/.well-known/openid-configuration"
    gateway = dict(bank.env)
    assert gateway["STETGATE_OIDC_ISSUER"] == op.url
    assert gateway["STETGATE_OIDC_CLIENT_ID"] == op.env["OP_CLIENT_ID"]
    assert json.loads(gateway["STETGATE_OIDC_ACR_VALUES"]) == [STRONG_ACR]
    # The OP's registered redirect URI is the gateway's callback, exactly.
    assert op.env["OP_REDIRECT_URI"] == settings.resolved_issuer + CALLBACK_PATH
    # The secret reaches both through the environment, never the command line (ps).
    assert gateway["STETGATE_OIDC_CLIENT_SECRET"] == op.env["OP_CLIENT_SECRET"]
    assert gateway["STETGATE_OIDC_CLIENT_SECRET"] == "s3cret-for-this-start"
    assert not any("s3cret" in arg for child in children.values() for arg in child.argv)


def test_without_delegated_login_the_gateway_keeps_its_own_login(tmp_path: Path) -> None:
    children = {c.name: c for c in sandbox_children(Settings(data_dir=tmp_path))}
    assert "openid-provider" not in children
    env = children["bank"].env
    assert "STETGATE_OIDC_ISSUER" not in env and "STETGATE_OIDC_CLIENT_SECRET" not in env


def test_each_start_draws_a_new_client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openid_provider, "node_and_npm", lambda: ("/usr/bin/node", "/usr/bin/npm"))
    first, second = DelegatedLogin.on_port(9446), DelegatedLogin.on_port(9446)
    assert first.node == "/usr/bin/node"
    assert len(first.client_secret) >= 32 and first.client_secret != second.client_secret


def test_delegated_login_without_node_is_refused_before_any_set_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither node nor npm there
    with pytest.raises(openid_provider.OpUnavailable, match="node and npm not found on PATH"):
        DelegatedLogin.on_port()
