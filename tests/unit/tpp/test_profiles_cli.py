"""`stetgate tpp profiles` and `--profile`: list, show and check profiles; a bad profile is
refused with its errors before anything reaches a bank."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from stetgate.tpp.bank_profile import builtin_profile, parse_profile
from stetgate.tpp.cli import tpp
from tests.support.pki import TestPki

BANK = "https://bank.test"


def _run(*args: str) -> Result:
    return CliRunner().invoke(tpp, list(args), catch_exceptions=False)


def test_profiles_lists_the_built_ins_with_their_description() -> None:
    result = _run("profiles")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["bpce", "sandbox"]
    assert builtin_profile("bpce").description in result.stdout


def test_show_prints_a_profile_that_reads_back_the_same() -> None:
    result = _run("profiles", "--show", "bpce")
    assert result.exit_code == 0
    assert parse_profile(result.stdout, "toml", "shown") == builtin_profile("bpce")


def test_show_of_a_file_validates_it_first(tmp_path: Path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(builtin_profile("sandbox").to_toml().replace('"same"', '"often"'))
    result = _run("profiles", "--show", str(path))
    assert result.exit_code == 1
    assert "tokens.refresh_rotation" in result.output


def test_show_of_neither_a_name_nor_a_file_is_refused() -> None:
    result = _run("profiles", "--show", "credit-agricole")
    assert result.exit_code == 1 and "neither a built-in profile" in result.output


def test_check_of_a_valid_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(builtin_profile("sandbox").to_toml().replace('"sandbox"', '"mine"', 1))
    result = _run("profiles", "--check", str(path))
    assert result.exit_code == 0 and "valid profile 'mine'" in result.output


def test_check_of_an_invalid_file_exits_1_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "Bad"\npkce = "yes"\n[endpoints]\nauthorize = "/a"\n')
    result = _run("profiles", "--check", str(path))
    assert result.exit_code == 1
    for field in ("name", "pkce", "endpoints.token", "endpoints.api_base"):
        assert f"{path}: {field}: " in result.output
    assert "Traceback" not in result.output


def test_check_and_show_together_are_a_usage_error() -> None:
    assert _run("profiles", "--show", "bpce", "--check", "x.toml").exit_code == 2


def test_a_command_with_a_bad_profile_is_a_usage_error(tmp_path: Path, pki: TestPki) -> None:
    certs = pki.issue().directory
    result = _run(
        *("--state-dir", str(tmp_path), "--certs", str(certs), "--client-id", "c"),
        *("--bank", BANK, "--profile", str(tmp_path / "absent.toml")),
        *("authorize-url", "--redirect-uri", "https://tpp.example/cb"),
    )
    assert result.exit_code == 2 and "--profile" in result.output


def test_the_bpce_profile_needs_the_registered_kid(tmp_path: Path, pki: TestPki) -> None:
    certs = pki.issue().directory
    common = ("--state-dir", str(tmp_path), "--certs", str(certs), "--client-id", "c")
    command = ("authorize-url", "--redirect-uri", "https://tpp.example/cb")
    refused = _run(*common, "--bank", BANK, "--profile", "bpce", *command)
    assert refused.exit_code == 1 and "--key-id" in refused.output
    started = _run(*common, "--bank", BANK, "--profile", "bpce", "--key-id", "seal-1", *command)
    assert started.exit_code == 0, started.output
    assert started.stdout.startswith(f"{BANK}/stet/psd2/oauth/authorize?")
    assert "code_challenge" not in started.stdout  # BPCE does not document PKCE


def test_without_bank_the_profile_s_base_url_is_used(tmp_path: Path, pki: TestPki) -> None:
    path = tmp_path / "mine.toml"
    text = builtin_profile("sandbox").to_toml()
    path.write_text(text.replace("https://localhost:8443", "https://psd2.bank.example"))
    result = _run(
        *("--state-dir", str(tmp_path), "--certs", str(pki.issue().directory)),
        *("--client-id", "c", "--profile", str(path)),
        *("authorize-url", "--redirect-uri", "https://tpp.example/cb"),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("https://psd2.bank.example/stet/psd2/oauth/authorize?")
