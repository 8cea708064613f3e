from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from stetgate.httpsig import ResolvedKey
from tests.unit.httpsig.signed_requests import KEY_ID


@pytest.fixture(scope="session")
def tpp_key() -> RSAPrivateKey:
    """The TPP's QSealC key pair (RSA-2048), generated once per session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def registry(tpp_key: RSAPrivateKey) -> dict[str, ResolvedKey[str]]:
    """Registered QSealC keys by keyId; the context stands in for the certificate record."""
    return {KEY_ID: ResolvedKey(tpp_key.public_key(), "tpp-42-qsealc")}
