"""A test Qualified Trust Service Provider (QTSP) for sandboxes and tests.

It issues certificates that follow the real PSD2 profiles of ETSI TS 119 495 §5
(on top of ETSI EN 319 412-2/-3/-4/-5), so stetgate's parser and validator are
exercised exactly as with a commercial QTSP:

* QWAC: subject C, O, organizationIdentifier, CN; keyUsage digitalSignature +
  keyEncipherment (critical); EKU clientAuth + serverAuth; QcCompliance, QcType
  ``web``, PSD2 statement; SAN dNSName when a hostname is given.
* QSealC: same subject; keyUsage digitalSignature + nonRepudiation; no EKU;
  QcType ``eseal``; always RSA-2048 because STET HTTP signatures are rsa-sha256.
* Both: AKI/SKI, a CRL distribution point (RFC 5280 §4.2.1.13) at
  ``<crl_base_url>/qtsp.crl``, random serials (RFC 5280 §4.1.2.2, CA/B BR §7.1), and, when the
  QTSP was created with an ``ocsp_url``, an AIA OCSP access location (§4.2.2.1) answered by
  :func:`answer_ocsp` (RFC 6960, signed by the CA itself).

Layout of ``data_dir``::

    ca.pem                 root CA certificate
    trust/ca.pem           the same, as a trust-anchor folder for the validator
    crl/qtsp.crl           DER CRL (RFC 5280 §5), replaced atomically
    server.pem server.key  the bank's TLS server certificate (EKU serverAuth)
    qtsp/ca.key            CA private key (0600)
    qtsp/config.json       crl_base_url, CRL file name, last CRLNumber
    qtsp/revoked.json      revoked serials

Keyword-only "knobs" build deliberately bad certificates (expired, no
organizationIdentifier, no PSD2 statement, raw qcStatements, no roles ...) so every
negative test, here or in integration suites, uses the same factory.
Every function that depends on time takes ``now``.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

from stetgate.clock import SystemClock
from stetgate.eidas.files import atomic_write
from stetgate.eidas.model import OrganizationIdentifier, Psd2Role, QcType
from stetgate.eidas.qcstatements import QC_STATEMENTS_OID, encode_qc_statements

DEFAULT_CA_NAME = "stetgate Test QTSP Root CA"
CRL_FILE_NAME = "qtsp.crl"
CRL_VALIDITY = timedelta(days=7)

QCP_W_PSD2 = "0.4.0.19495.3.1"  # ETSI TS 119 495 Annex A: qcp-web-psd2
QCP_W = "0.4.0.194112.1.4"  # ETSI EN 319 411-2 §5.3: QCP-w
QCP_L = "0.4.0.194112.1.1"  # ETSI EN 319 411-2 §5.3: QCP-l (legal person, seals)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keycompromise": x509.ReasonFlags.key_compromise,
    "cacompromise": x509.ReasonFlags.ca_compromise,
    "affiliationchanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationofoperation": x509.ReasonFlags.cessation_of_operation,
    "certificatehold": x509.ReasonFlags.certificate_hold,
    "privilegewithdrawn": x509.ReasonFlags.privilege_withdrawn,
}


class _Omit:
    """Sentinel type for "leave this out" knobs."""


OMIT = _Omit()


@dataclass(frozen=True, slots=True)
class QtspPaths:
    """Where a test QTSP keeps its files (see module docstring)."""

    data_dir: Path

    @property
    def ca_pem(self) -> Path:
        return self.data_dir / "ca.pem"

    @property
    def private_dir(self) -> Path:
        return self.data_dir / "qtsp"

    @property
    def ca_key(self) -> Path:
        return self.private_dir / "ca.key"

    @property
    def config(self) -> Path:
        return self.private_dir / "config.json"

    @property
    def revoked(self) -> Path:
        return self.private_dir / "revoked.json"

    @property
    def trust_dir(self) -> Path:
        return self.data_dir / "trust"

    @property
    def crl_dir(self) -> Path:
        return self.data_dir / "crl"

    @property
    def crl(self) -> Path:
        return self.crl_dir / CRL_FILE_NAME

    @property
    def server_pem(self) -> Path:
        return self.data_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.data_dir / "server.key"


@dataclass(frozen=True, slots=True)
class QtspInfo:
    """Result of :func:`init_qtsp`: the paths and whether the CA was created now."""

    paths: QtspPaths
    created: bool
    ca_subject: str
    crl_url: str


@dataclass(frozen=True, slots=True)
class IssuedTpp:
    """Files written by :func:`issue_tpp`."""

    qwac_pem: Path
    qwac_key: Path
    qsealc_pem: Path
    qsealc_key: Path
    qwac_serial_hex: str
    qsealc_serial_hex: str
    organization_identifier: str | None


@dataclass(frozen=True, slots=True)
class Authority:
    """A loaded CA: certificate, key and the CRL URL its leaves point to."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    crl_url: str
    ocsp_url: str | None = None


# --------------------------------------------------------------------------- keys & files


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """RSA key (RSA-2048 is what HTTP signatures with rsa-sha256 expect)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def generate_ec_key() -> ec.EllipticCurvePrivateKey:
    """P-256 key: fast to generate, fine for TLS."""
    return ec.generate_private_key(ec.SECP256R1())


def _now(now: datetime | None) -> datetime:
    """``now`` from the caller's clock; the system clock when a command line omits it."""
    if now is None:
        return SystemClock().now()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_key(path: Path, key: PrivateKey) -> None:
    """PEM (PKCS#8, unencrypted) with mode 0600."""
    atomic_write(path, _key_pem(key), 0o600)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    """PEM certificate."""
    atomic_write(path, _cert_pem(cert))


@contextlib.contextmanager
def _locked(paths: QtspPaths) -> Iterator[None]:
    """Serialize CA state changes (CRL number, revoked list) across processes."""
    paths.private_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.private_dir / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), 0o600)


# --------------------------------------------------------------------------- certificate builders


def _ski(public_key: CertificatePublicKeyTypes) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_ca(
    key: PrivateKey,
    *,
    common_name: str = DEFAULT_CA_NAME,
    organization: str = "stetgate Test QTSP",
    country: str = "FR",
    now: datetime | None = None,
    days: int = 3650,
) -> x509.Certificate:
    """Self-signed root: basicConstraints CA pathlen 0, keyUsage keyCertSign + cRLSign
    (RFC 5280 §4.2.1.9, §4.2.1.3), SKI."""
    start = _now(now) - timedelta(minutes=5)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(
    *, digital_signature: bool, key_encipherment: bool, non_repudiation: bool
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def psd2_subject(
    *,
    organization_identifier: str | None,
    organization_name: str,
    common_name: str,
    country: str,
) -> x509.Name:
    """ETSI TS 119 495 §5.2 / EN 319 412-3 §4.2.1 legal-person subject."""
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization_name),
    ]
    if organization_identifier is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, organization_identifier))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def build_leaf(
    authority: Authority,
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    *,
    profile: str,
    not_before: datetime,
    not_after: datetime,
    qc_statements_der: bytes | None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    extended_key_usage: Sequence[ObjectIdentifier] | None = None,
    policies: Sequence[str] = (),
    crl_url: str | _Omit | None = None,
    ocsp_url: str | _Omit | None = None,
) -> x509.Certificate:
    """One end-entity certificate. ``profile`` is ``"qwac"``, ``"qsealc"`` or
    ``"server"`` and chooses the keyUsage; ``qc_statements_der=None`` omits the
    qcStatements extension; ``crl_url=OMIT`` omits the CRL distribution point."""
    if profile == "qwac":
        ku = _key_usage(digital_signature=True, key_encipherment=True, non_repudiation=False)
    elif profile == "qsealc":
        ku = _key_usage(digital_signature=True, key_encipherment=False, non_repudiation=True)
    elif profile == "server":
        ku = _key_usage(
            digital_signature=True,
            key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
            non_repudiation=False,
        )
    else:
        raise ValueError(f"unknown profile {profile!r}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(_aki(authority.cert), critical=False)
    )
    if extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    url = authority.crl_url if crl_url is None else crl_url
    if isinstance(url, str):
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
            ),
            critical=False,
        )
    responder = authority.ocsp_url if ocsp_url is None else ocsp_url
    if isinstance(responder, str):
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(responder),
                    )
                ]
            ),
            critical=False,
        )
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(ObjectIdentifier(p), None) for p in policies]
            ),
            critical=False,
        )
    if qc_statements_der is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ObjectIdentifier(QC_STATEMENTS_OID), qc_statements_der),
            critical=False,  # EN 319 412-5 §4.1: qcStatements is non-critical
        )
    return builder.sign(authority.key, hashes.SHA256())


# --------------------------------------------------------------------------- QTSP operations


def load_authority(data_dir: Path) -> Authority:
    """Load the CA created by :func:`init_qtsp`."""
    paths = QtspPaths(Path(data_dir))
    cert = x509.load_pem_x509_certificate(paths.ca_pem.read_bytes())
    # The key is our own 0600 file, not attacker input: skip the ~50 ms RSA consistency
    # check that cryptography otherwise runs on every load.
    key = serialization.load_pem_private_key(
        paths.ca_key.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"unsupported CA key type {type(key).__name__}")
    config = _read_json(paths.config, {})
    base = str(config.get("crl_base_url", "")).rstrip("/")
    ocsp_url = config.get("ocsp_url")
    return Authority(
        cert=cert,
        key=key,
        crl_url=f"{base}/{CRL_FILE_NAME}",
        ocsp_url=str(ocsp_url) if ocsp_url else None,
    )


def init_qtsp(
    data_dir: Path,
    server_hostnames: Sequence[str],
    crl_base_url: str,
    *,
    ca_name: str = DEFAULT_CA_NAME,
    now: datetime | None = None,
    ca_key: PrivateKey | None = None,
    ocsp_url: str | None = None,
) -> QtspInfo:
    """Create the test QTSP in ``data_dir`` (idempotent). With ``ocsp_url``, the certificates
    it issues name that OCSP responder (:func:`answer_ocsp` answers it).

    An existing CA is never overwritten; missing pieces (trust copy, CRL, server
    certificate) are recreated around it. An empty ``server_hostnames`` issues no
    TLS server certificate (useful for a second, "foreign" CA).
    """
    paths = QtspPaths(Path(data_dir))
    created = False
    with _locked(paths):
        if not paths.ca_pem.exists() or not paths.ca_key.exists():
            key = ca_key or generate_rsa_key()
            cert = build_ca(key, common_name=ca_name, now=now)
            write_key(paths.ca_key, key)
            write_cert(paths.ca_pem, cert)
            config_values: dict[str, Any] = {
                "crl_base_url": crl_base_url.rstrip("/"),
                "crl_number": 0,
                "ca_name": ca_name,
            }
            if ocsp_url:
                config_values["ocsp_url"] = ocsp_url
            _write_json(paths.config, config_values)
            created = True
        config = _read_json(paths.config, {})
        if "crl_base_url" not in config:
            config["crl_base_url"] = crl_base_url.rstrip("/")
            config.setdefault("crl_number", 0)
            _write_json(paths.config, config)
        paths.trust_dir.mkdir(parents=True, exist_ok=True)
        trust_copy = paths.trust_dir / "ca.pem"
        if created or not trust_copy.exists():
            shutil.copyfile(paths.ca_pem, trust_copy)
    if created or not paths.crl.exists():
        publish_crl(paths.data_dir, now=now)
    authority = load_authority(paths.data_dir)
    if server_hostnames and (created or not paths.server_pem.exists()):
        issue_server_certificate(paths.data_dir, server_hostnames, now=now)
    return QtspInfo(
        paths=paths,
        created=created,
        ca_subject=authority.cert.subject.rfc4514_string(),
        crl_url=authority.crl_url,
    )


def issue_server_certificate(
    data_dir: Path,
    hostnames: Sequence[str],
    *,
    now: datetime | None = None,
    days: int = 825,
) -> tuple[Path, Path]:
    """The bank's TLS server certificate (EKU serverAuth, SAN DNS/IP for each hostname),
    written to ``server.pem``/``server.key``."""
    paths = QtspPaths(Path(data_dir))
    authority = load_authority(paths.data_dir)
    dns: list[str] = []
    ips: list[str] = []
    for host in hostnames:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            dns.append(host)
        else:
            ips.append(host)
    key = generate_ec_key()
    start = _now(now) - timedelta(minutes=5)
    cert = build_leaf(
        authority,
        key.public_key(),
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stetgate Test Bank"),
                x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]),
            ]
        ),
        profile="server",
        not_before=start,
        not_after=start + timedelta(days=days),
        qc_statements_der=None,
        dns_names=dns,
        ip_addresses=ips,
        extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    write_key(paths.server_key, key)
    write_cert(paths.server_pem, cert)
    return paths.server_pem, paths.server_key


def _nca_from_org_id(org_id: str | None) -> tuple[str, str, str] | None:
    """(country, NCA name, NCA id) from ``PSDFR-ACPR-12345`` → ("FR", "ACPR", "FR-ACPR")."""
    if org_id is None:
        return None
    try:
        parsed = OrganizationIdentifier.parse(org_id)
    except Exception:
        return None
    return parsed.country, parsed.nca, parsed.nca_id


def _roles(roles: Iterable[Psd2Role | str]) -> frozenset[Psd2Role]:
    return frozenset(r if isinstance(r, Psd2Role) else Psd2Role.from_name(r) for r in roles)


def issue_tpp(
    data_dir: Path,
    org_id: str,
    name: str,
    roles: Iterable[Psd2Role | str],
    out_dir: Path,
    *,
    days: int = 365,
    now: datetime | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    hostname: str | None = None,
    nca_name: str | None = None,
    nca_id: str | None = None,
    country: str | None = None,
    include_organization_identifier: bool = True,
    include_psd2_statement: bool = True,
    include_qc_statements: bool = True,
    qc_compliance: bool = True,
    qwac_qc_types: Sequence[QcType] = (QcType.WEB,),
    qsealc_qc_types: Sequence[QcType] = (QcType.ESEAL,),
    qc_statements_der: bytes | None = None,
    qwac_extended_key_usage: Sequence[ObjectIdentifier] | None = (
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    ),
    crl_url: str | _Omit | None = None,
    ocsp_url: str | _Omit | None = None,
    qwac_key: PrivateKey | None = None,
    qsealc_key: rsa.RSAPrivateKey | None = None,
    qwac_key_type: str = "rsa",
) -> IssuedTpp:
    """Issue a TPP's QWAC and QSealC (ETSI TS 119 495 §5) into ``out_dir``.

    ``roles`` are :class:`Psd2Role` values or names (``"AISP"``, ``"PSP_IC"`` ...).
    NCA name/id and the subject country derive from ``org_id``
    (``PSDFR-ACPR-12345`` → ``ACPR``, ``FR-ACPR``, ``FR``).

    Test knobs: ``not_before``/``not_after`` (e.g. in the past),
    ``include_organization_identifier=False``, ``include_psd2_statement=False``,
    ``include_qc_statements=False``, ``qc_statements_der`` (raw extension value for
    both certificates), ``qwac_qc_types``/``qsealc_qc_types``,
    ``qwac_extended_key_usage=None`` (no EKU), ``crl_url=OMIT`` (no CRL DP),
    ``ocsp_url`` (another responder, or OMIT for none), and
    pre-generated keys (``qwac_key``/``qsealc_key``) to save key-generation time.
    """
    authority = load_authority(Path(data_dir))
    derived = _nca_from_org_id(org_id)
    d_country, d_nca_name, d_nca_id = derived or ("FR", "TEST", "FR-TEST")
    role_set = _roles(roles)
    start = not_before or (_now(now) - timedelta(minutes=5))
    end = not_after or (start + timedelta(days=days))
    subject_org_id = org_id if include_organization_identifier else None
    out = Path(out_dir)

    def qc_der(types: Sequence[QcType]) -> bytes | None:
        if qc_statements_der is not None:
            return qc_statements_der
        if not include_qc_statements:
            return None
        return encode_qc_statements(
            qc_compliance=qc_compliance,
            qc_types=types,
            psd2_roles=role_set if include_psd2_statement else None,
            nca_name=nca_name or d_nca_name,
            nca_id=nca_id or d_nca_id,
        )

    if qwac_key is None:
        qwac_key = generate_ec_key() if qwac_key_type == "ec" else generate_rsa_key()
    if qsealc_key is None:
        qsealc_key = generate_rsa_key()
    qwac = build_leaf(
        authority,
        qwac_key.public_key(),
        psd2_subject(
            organization_identifier=subject_org_id,
            organization_name=name,
            common_name=hostname or name,
            country=country or d_country,
        ),
        profile="qwac",
        not_before=start,
        not_after=end,
        qc_statements_der=qc_der(qwac_qc_types),
        dns_names=[hostname] if hostname else [],
        extended_key_usage=qwac_extended_key_usage,
        policies=(QCP_W_PSD2, QCP_W),
        crl_url=crl_url,
        ocsp_url=ocsp_url,
    )
    qsealc = build_leaf(
        authority,
        qsealc_key.public_key(),
        psd2_subject(
            organization_identifier=subject_org_id,
            organization_name=name,
            common_name=name,
            country=country or d_country,
        ),
        profile="qsealc",
        not_before=start,
        not_after=end,
        qc_statements_der=qc_der(qsealc_qc_types),
        policies=(QCP_L,),
        crl_url=crl_url,
        ocsp_url=ocsp_url,
    )
    result = IssuedTpp(
        qwac_pem=out / "qwac.pem",
        qwac_key=out / "qwac.key",
        qsealc_pem=out / "qsealc.pem",
        qsealc_key=out / "qsealc.key",
        qwac_serial_hex=format(qwac.serial_number, "x"),
        qsealc_serial_hex=format(qsealc.serial_number, "x"),
        organization_identifier=subject_org_id,
    )
    write_cert(result.qwac_pem, qwac)
    write_key(result.qwac_key, qwac_key)
    write_cert(result.qsealc_pem, qsealc)
    write_key(result.qsealc_key, qsealc_key)
    return result


def issue_foreign_ca(
    data_dir: Path,
    *,
    ca_name: str = "Unrelated Test CA",
    crl_base_url: str = "http://foreign.invalid/crl",
    now: datetime | None = None,
    ca_key: PrivateKey | None = None,
) -> QtspInfo:
    """A second, unrelated CA (no server certificate). Use :func:`issue_tpp` with its
    ``data_dir`` to get leaves that stetgate must refuse as ``UnknownIssuer``.
    Passing ``ca_name=DEFAULT_CA_NAME`` builds a look-alike with the trusted CA's
    name but another key."""
    return init_qtsp(data_dir, (), crl_base_url, ca_name=ca_name, now=now, ca_key=ca_key)


def _reason(reason: str) -> x509.ReasonFlags:
    key = reason.replace("_", "").replace("-", "").lower()
    try:
        return _REASONS[key]
    except KeyError:
        raise ValueError(
            f"unknown CRL reason {reason!r}; use one of RFC 5280 §5.3.1: keyCompromise, "
            "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
            "certificateHold, privilegeWithdrawn, unspecified"
        ) from None


def revoke(
    data_dir: Path,
    cert_pem_path: Path,
    reason: str = "keyCompromise",
    *,
    now: datetime | None = None,
) -> Path:
    """Revoke a certificate issued by this QTSP and republish the CRL at once."""
    paths = QtspPaths(Path(data_dir))
    authority = load_authority(paths.data_dir)
    cert = x509.load_pem_x509_certificate(Path(cert_pem_path).read_bytes())
    if cert.issuer != authority.cert.subject:
        raise ValueError(
            f"{cert_pem_path} was issued by {cert.issuer.rfc4514_string()}, "
            f"not by this QTSP ({authority.cert.subject.rfc4514_string()})"
        )
    flag = _reason(reason)
    when = _now(now)
    with _locked(paths):
        revoked: dict[str, Any] = _read_json(paths.revoked, {})
        revoked.setdefault(
            format(cert.serial_number, "x"),
            {"revoked_at": when.isoformat(), "reason": flag.value},
        )
        _write_json(paths.revoked, revoked)
    return publish_crl(paths.data_dir, now=when)


def publish_crl(
    data_dir: Path,
    now: datetime | None = None,
    *,
    validity: timedelta = CRL_VALIDITY,
) -> Path:
    """Sign and publish a fresh CRL (RFC 5280 §5): thisUpdate = now, nextUpdate =
    now + ``validity``, incremented CRLNumber (§5.2.3), AKI (§5.2.1), one entry per
    revoked serial with its reasonCode (§5.3.1). Written atomically."""
    paths = QtspPaths(Path(data_dir))
    authority = load_authority(paths.data_dir)
    when = _now(now)
    with _locked(paths):
        config = _read_json(paths.config, {})
        number = int(config.get("crl_number", 0)) + 1
        config["crl_number"] = number
        revoked: dict[str, Any] = _read_json(paths.revoked, {})
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.cert.subject)
            .last_update(when)
            .next_update(when + validity)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(_aki(authority.cert), critical=False)
        )
        for serial_hex, entry in sorted(revoked.items()):
            rc = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial_hex, 16))
                .revocation_date(datetime.fromisoformat(entry["revoked_at"]))
            )
            flag = x509.ReasonFlags(entry.get("reason", "unspecified"))
            if flag is not x509.ReasonFlags.unspecified:
                rc = rc.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(rc.build())
        crl = builder.sign(authority.key, hashes.SHA256())
        atomic_write(paths.crl, crl.public_bytes(serialization.Encoding.DER))
        _write_json(paths.config, config)
    return paths.crl


def answer_ocsp(
    data_dir: Path,
    request_der: bytes,
    *,
    now: datetime | None = None,
    validity: timedelta = timedelta(hours=1),
    any_issuer: bool = False,
) -> bytes:
    """The DER OCSP response (RFC 6960 §4.2) to ``request_der``, signed by the CA itself
    (§4.2.2.2, no delegated responder): ``revoked`` with time and reason for a serial in
    ``revoked.json``, ``good`` for any other serial of this CA, ``unauthorized`` (§2.3) for a
    request about another CA's certificate. thisUpdate = now, nextUpdate = now + validity.
    Test knob: ``any_issuer=True`` answers ``good`` for another CA's certificate too — a
    forged answer, which a relying party must refuse."""
    paths = QtspPaths(Path(data_dir))
    authority = load_authority(paths.data_dir)
    when = _now(now)
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        ).public_bytes(serialization.Encoding.DER)
    ours = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(authority.cert, authority.cert, request.hash_algorithm)
        .build()
    )
    if request.issuer_key_hash != ours.issuer_key_hash and not any_issuer:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.UNAUTHORIZED
        ).public_bytes(serialization.Encoding.DER)
    revoked: dict[str, Any] = _read_json(paths.revoked, {})
    entry = revoked.get(format(request.serial_number, "x"))
    if entry is None:
        status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
    else:
        status = ocsp.OCSPCertStatus.REVOKED
        revoked_at = datetime.fromisoformat(entry["revoked_at"])
        reason = x509.ReasonFlags(entry.get("reason", "unspecified"))
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=when,
            next_update=when + validity,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, authority.cert)
    )
    return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


__all__ = [
    "CRL_FILE_NAME",
    "DEFAULT_CA_NAME",
    "OMIT",
    "Authority",
    "IssuedTpp",
    "QtspInfo",
    "QtspPaths",
    "answer_ocsp",
    "build_ca",
    "build_leaf",
    "generate_ec_key",
    "generate_rsa_key",
    "init_qtsp",
    "issue_foreign_ca",
    "issue_server_certificate",
    "issue_tpp",
    "load_authority",
    "psd2_subject",
    "publish_crl",
    "revoke",
    "write_cert",
    "write_key",
]
