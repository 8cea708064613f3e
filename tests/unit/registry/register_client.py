"""A TPP driving the register API of a running test bank over real mutual TLS.

Integration tests use it; it speaks the wire protocol only (form posts to the token endpoint,
signed JSON to the register endpoints), never stetgate's internals.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.bank import RunningBank, start_bank
from tests.support.pki import TestPki, TppCerts
from tests.unit.registry.register_requests import (
    REGISTER_TARGET,
    SIGNED,
    encode,
    load_key,
    registration_document,
    signed_headers,
)

TOKEN_PATH = "/stet/psd2/oauth/token"
REGISTRATION_CLIENT_ID = "PSD2_TPPRegister"


def unique_name(prefix: str = "TPP") -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


@dataclass
class RegisteringTpp:
    """One TPP (its QWAC/QSealC files) talking to ``bank``."""

    bank: RunningBank
    certs: TppCerts

    @contextmanager
    def http(
        self, certs: TppCerts | None = None, *, no_certificate: bool = False, **kwargs: Any
    ) -> Iterator[httpx.Client]:
        """An httpx client over mTLS with this TPP's QWAC (or ``certs``'s, or none)."""
        with self.bank.client(
            None if no_certificate else (certs or self.certs), **kwargs
        ) as client:
            yield client

    def registration_token(self, certs: TppCerts | None = None, **form: Any) -> httpx.Response:
        data = {
            "grant_type": "client_credentials",
            "client_id": REGISTRATION_CLIENT_ID,
            "scope": "manageRegistration",
            **form,
        }
        with self.http(certs) as client:
            return client.post(TOKEN_PATH, data={k: v for k, v in data.items() if v})

    def new_registration_token(self) -> str:
        response = self.registration_token()
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def document(self, *, seal: TppCerts | None = None, **overrides: Any) -> dict[str, Any]:
        if "client_name" not in overrides:
            overrides["client_name"] = unique_name()
        return registration_document((seal or self.certs).qsealc_pem, **overrides)

    def send(
        self,
        method: str,
        target: str,
        *,
        bearer: str | None,
        document: Any = None,
        body: bytes | None = None,
        seal_key: Path | None = None,
        key_id: str = "qsealc-1",
        signed: Sequence[str] = SIGNED,
        headers: dict[str, str] | None = None,
        drop: Sequence[str] = (),
        request_id: str | None = None,
        certs: TppCerts | None = None,
        no_certificate: bool = False,
    ) -> httpx.Response:
        """A register request signed with the QSealC key (``seal_key``, default this TPP's);
        ``headers`` are added after signing (to tamper), ``drop`` removed after signing."""
        if body is None:
            body = b"" if document is None else encode(document)
        key = load_key(seal_key or self.certs.qsealc_key)
        all_headers = signed_headers(
            method,
            target,
            body,
            key,
            key_id,
            bearer=bearer,
            request_id=request_id,
            signed=signed if body else [s for s in signed if s != "digest"],
        )
        if bearer is None:
            all_headers.pop("Authorization", None)
        all_headers.update(headers or {})
        for name in drop:
            all_headers.pop(name, None)
        with self.http(certs, no_certificate=no_certificate) as client:
            return client.request(method, target, content=body or None, headers=all_headers)

    def register(self, document: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        bearer = kwargs.pop("bearer", None) or self.new_registration_token()
        return self.send(
            "POST", REGISTER_TARGET, bearer=bearer, document=document or self.document(), **kwargs
        )

    def registered(self, **overrides: Any) -> dict[str, Any]:
        """Register and return the 201 body."""
        response = self.register(self.document(**overrides))
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def client_path(client_id: str) -> str:
    return f"{REGISTER_TARGET}/{client_id}"


@pytest.fixture(scope="module")
def module_bank(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[RunningBank]:
    """One bank per module and database (the register tests use distinct organizations and
    names, so they can share it), with the module's ``BANK_SETTINGS`` (Settings overrides) if
    it has any. Import it into a test module (or a conftest) to use it."""
    from tests.conftest import fresh_database_url

    data_dir = tmp_path_factory.mktemp("module-bank")
    url = fresh_database_url(request, database, data_dir)
    bank = start_bank(pki, url, data_dir / "bank", **getattr(request.module, "BANK_SETTINGS", {}))
    yield bank
    bank.stop()
