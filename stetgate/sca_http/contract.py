"""The SCA-service contract's fixed names: paths, fields, version (openapi.json says the rest).

Kept in one small module both sides import — stetgate's client (`stetgate.sca_http.method`),
its callback route and the demo service — so they cannot drift apart."""

from __future__ import annotations

import re

from stetgate.bank.sca import CHALLENGE_APPROVED, CHALLENGE_EXPIRED, CHALLENGE_REJECTED

CONTRACT_VERSION = "1"
VERSION_HEADER = "Sca-Contract-Version"
"""Sent on every request; a service that does not speak this version answers 400."""

CHALLENGES_PATH = "/challenges"
CALLBACK_PATH = "/psu/sca/callback"
"""stetgate's callback route; the signature covers this path whatever proxy is in front."""

FINAL_STATES = frozenset({CHALLENGE_APPROVED, CHALLENGE_REJECTED, CHALLENGE_EXPIRED})

CHALLENGE_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
"""A service's challenge id: URL-safe as a path segment, fits ``sca_service_challenge_id``."""


def challenge_path(challenge_id: str) -> str:
    return f"{CHALLENGES_PATH}/{challenge_id}"
