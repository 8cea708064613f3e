"""The ``bank_*`` settings refuse an incomplete or unsafe backend configuration at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stetgate.settings import Settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bank_url": "ftp://core"}, "http"),
        ({"bank_url": "https://core.bank"}, "bank_client_cert_file"),
        ({"bank_url": "http://core.bank", "bank_client_cert_file": "c.pem"}, "https"),
        (
            {"bank_url": "https://core.bank", "bank_auth": "client_credentials"},
            "bank_token_url",
        ),
        ({"bank_url": "http://core.bank", "bank_auth": "none"}, "loopback"),
        ({"bank_url": "http://127.0.0.1:8480", "bank_timeout_ms": 10}, "bank_timeout_ms"),
    ],
)
def test_an_incomplete_backend_configuration_is_refused(
    values: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(data_dir=tmp_path, **values)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"bank_url": "http://127.0.0.1:8480", "bank_auth": "none"},
        {"bank_url": "http://localhost:8480", "bank_auth": "none"},
        {"bank_url": "https://core.bank", "bank_client_cert_file": "gw.pem"},
        {
            "bank_url": "https://core.bank",
            "bank_auth": "client_credentials",
            "bank_token_url": "https://core.bank/token",
            "bank_client_id": "gw",
            "bank_client_secret": "s",
        },
    ],
)
def test_complete_configurations_are_accepted(values: dict[str, Any], tmp_path: Path) -> None:
    Settings(data_dir=tmp_path, **values)


def test_the_client_secret_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        bank_url="https://core.bank",
        bank_auth="client_credentials",
        bank_token_url="https://core.bank/token",
        bank_client_id="gw",
        bank_client_secret="very-secret-value",
    )
    assert "very-secret-value" not in repr(settings)
