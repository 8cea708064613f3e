"""Cost of verifying one STET request signature (draft-cavage, rsa-sha256), in µs.

Run: .venv/bin/python benchmarks/http_signatures.py
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers' package

from stetgate.httpsig import ResolvedKey, parse_signature_header, verify_request
from tests.unit.httpsig.signed_requests import (
    BODY,
    KEY_ID,
    NOW,
    TARGET,
    signed_request,
)


def main(n: int = 5000) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    headers = signed_request(key)
    keys = {KEY_ID: ResolvedKey(public, "ctx")}

    def verify() -> None:
        verify_request("PUT", TARGET, headers, BODY, keys.get, now=NOW)

    signature = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    full = timeit.timeit(verify, number=n) / n * 1e6
    bare = (
        timeit.timeit(
            lambda: public.verify(signature, b"x", padding.PKCS1v15(), hashes.SHA256()), number=n
        )
        / n
        * 1e6
    )
    parse = timeit.timeit(lambda: parse_signature_header(headers["Signature"]), number=n) / n * 1e6
    print(f"verify_request          {full:7.1f} µs")
    print(f"bare RSA-2048 verify    {bare:7.1f} µs")
    print(f"parse Signature header  {parse:7.1f} µs")


if __name__ == "__main__":
    main()
