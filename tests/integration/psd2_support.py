"""A bank serving the STET resource API, seeded with the demo ledger, and a TPP that calls it
over mTLS with signed requests — shared by the psd2 integration and schemathesis tests.

The world is module-scoped (one server and one seeded database per module and database
kind); `ApiWorld.reset` puts the clock and every piece of state a test can change (consents,
unattended counters, tokens) back before each test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy import Engine, delete

from stetgate.clock import FrozenClock, SystemClock
from stetgate.demo.psu_directory import DatabasePsuDirectory
from stetgate.demo.seed import DemoLedger, build_demo_ledger, seed_demo_bank
from stetgate.eidas import parse_certificate
from stetgate.httpsig import compute_digest, required_signed_headers, sign_request
from stetgate.keys import InstanceKeys, load_master_key
from stetgate.oauth.clients import Client, insert_client, stored_certificate
from stetgate.oauth.token_pairs import create_pair
from stetgate.settings import Settings
from stetgate.store.schema import audit_events, grants, psd2_consents, psd2_unattended_access
from tests.support.bank import RunningBank, start_bank
from tests.support.pki import TestPki, TppCerts

API = "/stet/psd2/v1.4.2"
REDIS_URL = "redis://127.0.0.1:6379/15"
ORG = "PSDFR-ACPR-45001"
SEED = 3
PSU_IP = "198.51.100.23"


def cheap_directory(engine: Engine, settings: Settings) -> DatabasePsuDirectory:
    """The PSU directory with a fast argon2 profile: seeding in tests needs no real hashing cost."""
    keys = InstanceKeys.from_master(load_master_key(settings.secret_key, settings.data_dir))
    return DatabasePsuDirectory(
        engine,
        keys.totp_fernet,
        max_failed_attempts=5,
        block_seconds=900,
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )


@dataclass
class DemoPsuWorld:
    """A bank seeded with the demo PSUs, a Go-Live TPP, and Marie's robot (TOTP on the bank's
    clock) — what a real-flow test needs before its first `/authorize`."""

    bank: RunningBank
    pki: TestPki
    marie: dict[str, Any]
    certs: TppCerts
    robot: Any  # stetgate.tpp.psu_robot.PsuRobot

    def tpp_client(self) -> Any:
        from stetgate.tpp.client import StetBankClient, TppCredentials

        return StetBankClient(
            self.bank.base_url,
            TppCredentials.from_directory(self.certs.directory),
            self.certs.org_id,
            ca_file=self.pki.ca_pem,
            clock=self.bank.clock,
        )


def demo_psu_world(bank: RunningBank, pki: TestPki, org_id: str) -> DemoPsuWorld:
    from stetgate.demo.totp import decode_totp_secret, totp_at
    from stetgate.tpp.psu_robot import PsuRobot

    seed_demo_bank(bank.settings, 2, now=bank.clock.now(), directory_factory=cheap_directory)
    people = json.loads((bank.settings.data_dir / "demo-psus.json").read_text())
    marie = next(p for p in people if p["id"] == "mdupont")
    certs = pki.issue(org_id, ("AISP", "CBPII"))
    register_client(bank.services.engine, certs, bank.clock.now())
    secret = decode_totp_secret(marie["totp_secret"])
    robot = PsuRobot(
        marie["id"], marie["password"], otp=lambda: totp_at(secret, bank.clock.now()), method="totp"
    )
    return DemoPsuWorld(bank, pki, marie, certs, robot)


def register_client(
    engine: Engine,
    tpp: TppCerts,
    now: datetime,
    *,
    client_id: str | None = None,
    qsealc_kid: str | None = None,
    qsealc_url: str | None = None,
    with_qsealc: bool = True,
    extra_qwacs: Sequence[TppCerts] = (),
) -> str:
    """A Go-Live client (client_id = organizationIdentifier) with its QWAC(s) and QSealC."""
    qwacs = [tpp, *extra_qwacs]
    certificates = [
        stored_certificate("qwac", parse_certificate(t.qwac_pem.read_bytes())) for t in qwacs
    ]
    if with_qsealc:
        certificates.append(
            stored_certificate(
                "qsealc",
                parse_certificate(tpp.qsealc_pem.read_bytes()),
                kid=qsealc_kid,
                url=qsealc_url,
            )
        )
    cid = client_id or tpp.org_id
    with engine.begin() as conn:
        insert_client(
            conn,
            Client(
                client_id=cid,
                org_id=tpp.org_id,
                name=f"TPP {cid}",
                origin="golive",
                status="active",
                redirect_uris=("https://tpp.example/cb",),
                require_pkce=False,
                contacts=(),
                grant_types=("authorization_code", "refresh_token"),
                response_types=("code",),
                certificates=tuple(certificates),
                created_at=now,
                updated_at=now,
            ),
        )
    return cid


@dataclass
class Signer:
    """The TPP's QSealC signing key and the keyId it announces."""

    key: RSAPrivateKey
    key_id: str

    @classmethod
    def of(cls, tpp: TppCerts, key_id: str | None = None) -> Signer:
        key = serialization.load_pem_private_key(tpp.qsealc_key.read_bytes(), password=None)
        assert isinstance(key, RSAPrivateKey)
        cert = x509.load_pem_x509_certificate(tpp.qsealc_pem.read_bytes())
        return cls(key, key_id or f"SN={cert.serial_number:x},CA={cert.issuer.rfc4514_string()}")


def signed_headers(
    method: str,
    target: str,
    body: bytes,
    signer: Signer,
    *,
    token: str | None,
    psu_ip: str | None,
    clock: FrozenClock | None,
    headers: Mapping[str, str] | None = None,
    sign: Sequence[str] | None = None,
) -> dict[str, str]:
    """The headers of a STET call signed as docs/decisions.md#http-signatures requires (plus a
    signed Date)."""
    values: dict[str, str] = {"X-Request-ID": str(uuid.uuid4()), "Accept": "application/hal+json"}
    if clock is not None:
        values["Date"] = format_datetime(clock.now(), usegmt=True)
    if token is not None:
        values["Authorization"] = f"Bearer {token}"
    if psu_ip is not None:
        values["PSU-IP-Address"] = psu_ip
    if body:
        values["Content-Type"] = "application/json"
        values["Digest"] = compute_digest(body)
    values.update(headers or {})
    names = (
        list(sign)
        if sign is not None
        else list(
            dict.fromkeys(
                [*required_signed_headers(values, body), *(["date"] if "Date" in values else [])]
            )
        )
    )
    values["Signature"] = sign_request(method, target, values, signer.key, signer.key_id, names)
    return values


@dataclass
class Tpp:
    """One TPP's HTTP side: mTLS client with its QWAC, and its QSealC signer."""

    http: httpx.Client
    signer: Signer
    clock: FrozenClock

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        psu_ip: str | None = PSU_IP,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        sign: Sequence[str] | None = None,
        signer: Signer | None = None,
        after_signing: Callable[[dict[str, str]], None] | None = None,
        send_body: bytes | None = None,
        send_target: str | None = None,
    ) -> httpx.Response:
        """Sign and send; ``after_signing`` / ``send_body`` / ``send_target`` tamper with what
        is sent after the signature was computed."""
        target = path if path.startswith("/") else f"{API}/{path}"
        body = (
            content
            if content is not None
            else (b"" if json_body is None else httpx.Request("POST", "/", json=json_body).content)
        )
        values = signed_headers(
            method,
            target,
            body,
            signer or self.signer,
            token=token,
            psu_ip=psu_ip,
            clock=self.clock,
            headers=headers,
            sign=sign,
        )
        if after_signing is not None:
            after_signing(values)
        return self.http.request(
            method,
            send_target or target,
            headers=values,
            content=send_body if send_body is not None else (body or None),
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def follow(self, href: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", href, **kwargs)


@dataclass
class ApiWorld:
    bank: RunningBank
    ledger: DemoLedger
    tpp_certs: TppCerts
    client_id: str
    start: datetime
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.bank.services.engine

    @property
    def clock(self) -> FrozenClock:
        return self.bank.clock

    def reset(self) -> None:
        self.clock.set(self.start)
        with self.engine.begin() as conn:
            for table in (psd2_consents, psd2_unattended_access, grants, audit_events):
                conn.execute(delete(table))

    def tpp(self, certs: TppCerts | None = None, signer: Signer | None = None) -> Tpp:
        http = self.bank.client(certs or self.tpp_certs)
        self._clients.append(http)
        return Tpp(http, signer or Signer.of(certs or self.tpp_certs), self.clock)

    def token(
        self,
        psu_id: str,
        role: str = "aisp",
        *,
        scope: str | None = None,
        certs: TppCerts | None = None,
        client_id: str | None = None,
        lifetime: timedelta = timedelta(hours=1),
    ) -> str:
        """An access token as `/token` issues it: bound to the QWAC's thumbprint."""
        certs = certs or self.tpp_certs
        now = self.clock.now()
        cnf = parse_certificate(certs.qwac_pem.read_bytes()).thumbprint_s256
        with self.engine.begin() as conn:
            pair = create_pair(
                conn,
                client_id=client_id or self.client_id,
                org_id=certs.org_id,
                psu_id=psu_id,
                role=role,
                scope=scope or role,
                sca_at=now,
                refresh_expires_at=now + timedelta(days=90),
                access_expires_at=now + lifetime,
                access_cnf=cnf,
                now=now,
            )
        return pair.access_token

    def accounts_of(self, psu_id: str) -> list[Any]:
        return [a for a in self.ledger.accounts if any(h == psu_id for h, _ in a.holders)]

    def close(self) -> None:
        for http in self._clients:
            http.close()
        self.bank.stop()


def database_url(request: pytest.FixtureRequest, directory: Path) -> str:
    """`db_url` for a fixture parametrized with its own database kinds (``request.param``)."""
    from tests.conftest import fresh_database_url

    return fresh_database_url(request, request.param, directory)


def build_world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    directory: Path,
    database: str,
    *,
    url: str | None = None,
    clock: FrozenClock | None = None,
    **settings: Any,
) -> Iterator[ApiWorld]:
    """A seeded bank on a fresh database of kind `database` (the module fixture's ``database``
    fixture, see tests/conftest.py), or on ``url`` when the test made it (e.g. to start a
    core-banking service on it first); its clock starts now, or at ``clock`` (then `pki`'s
    certificates must be valid from that time)."""
    from tests.conftest import fresh_database_url

    url = url or fresh_database_url(request, database, directory)
    clock = clock or FrozenClock(SystemClock().now().replace(microsecond=0))
    start = clock.now()
    bank = start_bank(pki, url, directory / "bank", clock, **settings)
    # The demo history ends on the bank clock's day (Europe/Paris), whatever the date: tests
    # read amounts and dates from `ledger` or the bank, never from constants.
    anchor = start.astimezone(ZoneInfo("Europe/Paris")).date()
    seed_demo_bank(bank.settings, SEED, anchor=anchor, now=start, directory_factory=cheap_directory)
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    client_id = register_client(bank.services.engine, certs, start)
    ledger = build_demo_ledger(SEED, anchor)
    world = ApiWorld(bank, ledger, certs, client_id, start)
    try:
        yield world
    finally:
        world.close()


def redis_or_skip() -> redis.Redis:
    """The local Redis (database 15) for the Redis counter tests; skip when it is not there."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {type(exc).__name__}")
    return client
