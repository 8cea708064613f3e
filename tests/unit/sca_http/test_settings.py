"""The SCA-service settings refuse a half configuration at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stetgate.settings import Settings


def test_an_sca_service_url_needs_a_long_enough_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="sca_http_secret"):
        Settings(data_dir=tmp_path, sca_http_url="http://sca.internal")
    with pytest.raises(ValidationError, match="sca_http_secret"):
        Settings(data_dir=tmp_path, sca_http_url="http://sca.internal", sca_http_secret="short")
    with pytest.raises(ValidationError, match="sca_http_url"):
        Settings(data_dir=tmp_path, sca_http_url="ftp://sca", sca_http_secret="s" * 32)
    with pytest.raises(ValidationError, match="sca_http_mode"):
        Settings(data_dir=tmp_path, sca_http_mode="push")  # type: ignore[arg-type]
    ok = Settings(data_dir=tmp_path, sca_http_url="https://sca.internal", sca_http_secret="s" * 32)
    assert ok.sca_http_mode == "callback" and ok.sca_http_timeout_seconds == 5.0
