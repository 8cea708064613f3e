"""The sandbox's printed terminal session: runnable as printed from any shell — the
full path of `stetgate`, the bank's actual URL, quoted paths — and the demo TPP's redirect URIs
include the loopback one `tpp authorize --listen` uses."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from stetgate.sandbox import CLI_REDIRECT_URI, DEMO_TPP_ORG_ID, _cli_hints, demo_tpp_redirect_uris


def test_the_hints_name_the_bank_its_ca_and_an_absolute_stetgate(tmp_path: Path) -> None:
    certs, ca = tmp_path / "my data" / "demo-tpp", tmp_path / "my data" / "ca.pem"
    lines = [line.strip() for line in _cli_hints("https://localhost:9443", certs, ca).splitlines()]
    export = next(line for line in lines if line.startswith("export "))
    variables = dict(item.split("=", 1) for item in shlex.split(export)[1:])
    assert variables == {
        "STETGATE_TPP_BANK": "https://localhost:9443",
        "STETGATE_TPP_CLIENT_ID": DEMO_TPP_ORG_ID,
        "STETGATE_TPP_CERTS": str(certs),
        "STETGATE_TPP_CA": str(ca),
    }
    commands = [shlex.split(line, comments=True) for line in lines if " tpp " in line]
    assert [c[c.index("tpp") + 1] for c in commands] == ["authorize", "consent", "api"]
    for command in commands:
        program = command[: command.index("tpp")]
        assert program == [str(Path(sys.executable).with_name("stetgate"))] or program == [
            sys.executable,
            "-m",
            "stetgate.cli",
        ]
        assert Path(program[0]).is_absolute()
    assert "--psu-ip" in commands[2]


def test_the_demo_tpp_has_its_web_callback_and_the_loopback_one() -> None:
    assert demo_tpp_redirect_uris(9444) == ["https://localhost:9444/callback", CLI_REDIRECT_URI]
    assert CLI_REDIRECT_URI == "https://127.0.0.1/callback"
