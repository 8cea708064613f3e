"""Fixtures: a fresh test QTSP per test, with keys generated once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from stetgate.eidas import CertificateValidator, Psd2Certificate, parse_certificate
from stetgate.eidas.qtsp import IssuedTpp, generate_rsa_key, init_qtsp, issue_tpp

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ORG_ID = "PSDFR-ACPR-12345"


@dataclass(frozen=True)
class Keys:
    ca: rsa.RSAPrivateKey
    foreign_ca: rsa.RSAPrivateKey
    qwac: rsa.RSAPrivateKey
    qsealc: rsa.RSAPrivateKey


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(generate_rsa_key(), generate_rsa_key(), generate_rsa_key(), generate_rsa_key())


@pytest.fixture
def qtsp_dir(tmp_path: Path, keys: Keys) -> Path:
    data = tmp_path / "qtsp-data"
    init_qtsp(
        data, ["localhost", "127.0.0.1"], "http://127.0.0.1:8000/crl", now=NOW, ca_key=keys.ca
    )
    return data


Issue = Callable[..., IssuedTpp]


@pytest.fixture
def issue(qtsp_dir: Path, tmp_path: Path, keys: Keys) -> Issue:
    """issue(roles=..., **knobs) → IssuedTpp from the per-test QTSP."""
    counter = iter(range(1_000_000))

    def _issue(
        roles: Any = ("AISP", "CBPII"),
        *,
        org_id: str = ORG_ID,
        data_dir: Path | None = None,
        **knobs: Any,
    ) -> IssuedTpp:
        knobs.setdefault("now", NOW)
        knobs.setdefault("qwac_key", keys.qwac)
        knobs.setdefault("qsealc_key", keys.qsealc)
        return issue_tpp(
            data_dir or qtsp_dir,
            org_id,
            "Test TPP SAS",
            roles,
            tmp_path / f"tpp{next(counter)}",
            hostname="tpp.example.fr",
            **knobs,
        )

    return _issue


@pytest.fixture
def validator(qtsp_dir: Path) -> Iterator[CertificateValidator]:
    v = CertificateValidator.from_folders(qtsp_dir / "trust", qtsp_dir / "crl", poll_seconds=0)
    yield v
    v.close()


def load(path: Path) -> Psd2Certificate:
    return parse_certificate(path.read_bytes())
