"""Paging links (HAL ``first``/``prev``/``next``/``last``) that cannot be used to dodge the
unattended-access limit.

STET v1.4.2 lists are paginated through links the TPP follows; BPCE does not count following
them against the "4 calls a day" quota (docs/decisions.md#unattended-access). The continuation of
a listing is therefore carried by one opaque ``page`` parameter, a token stetgate signs
(HMAC-SHA-256 with an instance key) over:

- the listing it belongs to — TPP organization, PSU, endpoint and account — without writing
  them in the URL (the MAC covers them, the token only holds a short page state), so a link
  works for no other PSU, account or endpoint;
- the listing's frozen parameters, including the snapshot (the greatest ``entryReference`` at
  the counted call), so following links only re-reads what the counted call already listed,
  never newer data;
- the time it was issued: a link expires after ``lifetime`` (15 minutes by default).

A call with a valid ``page`` token is a continuation and is not counted; anything else is a new
listing and is. Tokens are stateless, so every worker accepts every other worker's links.

Why the token is binary and its MAC 96 bits: STET v1.4.2's ``GenericLink.href`` has
``maxLength: 140``, and a TPP client generated from STET's OpenAPI with validation refuses a
longer link. The first tokens (JSON state and a 128-bit MAC) made transaction links 173–184
characters long (found by an outside conformance run). The state is now packed — issue time in
4 bytes, then one byte per field (its letter; upper case for a date) and an unsigned LEB128
integer (a date as its proleptic ordinal) — and a paged link stays around 110 characters. A
96-bit MAC on a link that lives 15 minutes leaves forging at 2^-96 per try.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from stetgate.psd2.errors import BadRequest

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{6,200}\.[A-Za-z0-9_-]{16}")
DEFAULT_LIFETIME_SECONDS = 900
_MAC_BYTES = 12
MAX_LINK_LENGTH = 140
"""STET v1.4.2 ``GenericLink.href`` ``maxLength``."""


@dataclass(frozen=True, slots=True)
class Listing:
    """Which listing a paging token continues (never written in the token itself)."""

    org_id: str
    psu_id: str
    endpoint: str
    resource: str = ""

    def encoded(self) -> bytes:
        return "\x1f".join((self.org_id, self.psu_id, self.endpoint, self.resource)).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PagingTokens:
    """Issues and opens ``page`` tokens for one bank (all its workers share the key)."""

    def __init__(self, key: bytes, lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS) -> None:
        if len(key) < 32:
            raise ValueError("the paging key must be at least 256 bits")
        self._key = key
        self._lifetime = lifetime_seconds

    def _mac(self, listing: Listing, payload: bytes) -> bytes:
        return hmac.new(self._key, listing.encoded() + b"\x1e" + payload, hashlib.sha256).digest()[
            :_MAC_BYTES
        ]

    def issue(self, listing: Listing, state: Mapping[str, Any], now: datetime) -> str:
        """A token for ``state``: one-letter keys, values a non-negative int, an ISO date
        string or None (left out)."""
        payload = pack_state(state, int(now.timestamp()))
        return f"{_b64(payload)}.{_b64(self._mac(listing, payload))}"

    def open(self, token: str, listing: Listing, now: datetime) -> dict[str, Any]:
        """The state of a token issued for ``listing``; 400 when forged, foreign or expired."""
        if TOKEN_PATTERN.fullmatch(token) is None:
            raise BadRequest("the page parameter is not a paging link of this API")
        payload_b64, mac_b64 = token.split(".")
        try:
            payload, mac = _unb64(payload_b64), _unb64(mac_b64)
        except (binascii.Error, ValueError):
            raise BadRequest("the page parameter is not a paging link of this API") from None
        if not hmac.compare_digest(mac, self._mac(listing, payload)):
            raise BadRequest("the page parameter is not a paging link of this listing")
        try:
            issued, state = unpack_state(payload)
        except (ValueError, OverflowError):
            raise BadRequest("the page parameter is not a paging link of this API") from None
        age = now.timestamp() - issued
        if age > self._lifetime or age < -60:
            raise BadRequest("this paging link has expired: request the first page again")
        return state


def pack_state(state: Mapping[str, Any], issued: int) -> bytes:
    """``issued`` (4 bytes, big-endian) then each field: its letter, and its value as an
    unsigned LEB128 integer (a date: upper-case letter, its proleptic ordinal)."""
    out = bytearray(issued.to_bytes(4, "big"))
    for key in sorted(state):
        value = state[key]
        if value is None:
            continue
        if len(key) != 1 or not key.islower() or not key.isascii():
            raise ValueError(f"paging state keys are single lower-case letters, not {key!r}")
        if isinstance(value, str):
            out += key.upper().encode() + _varint(date.fromisoformat(value).toordinal())
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out += key.encode() + _varint(value)
        else:
            raise ValueError(f"paging state value of {key!r} must be an int >= 0 or a date")
    return bytes(out)


def unpack_state(payload: bytes) -> tuple[int, dict[str, Any]]:
    """The inverse of `pack_state`; ValueError when ``payload`` is not one."""
    if len(payload) < 4:
        raise ValueError("truncated")
    issued = int.from_bytes(payload[:4], "big")
    state: dict[str, Any] = {}
    position = 4
    while position < len(payload):
        letter = chr(payload[position])
        if not letter.isascii() or not letter.isalpha():
            raise ValueError("bad field")
        value, position = _read_varint(payload, position + 1)
        key = letter.lower()
        if key in state:
            raise ValueError("repeated field")
        state[key] = date.fromordinal(value).isoformat() if letter.isupper() else value
    return issued, state


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data) and shift <= 63:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    raise ValueError("truncated or oversized integer")


@dataclass(frozen=True, slots=True)
class Page:
    """Position of one page in a listing of ``total`` items, ``size`` per page."""

    index: int
    size: int
    total: int

    @property
    def last_index(self) -> int:
        return max(0, (self.total - 1) // self.size)

    @property
    def offset(self) -> int:
        return self.index * self.size

    @property
    def paginated(self) -> bool:
        return self.total > self.size

    def neighbours(self) -> dict[str, int]:
        """HAL relation → page index, for the links to emit (none for a single page)."""
        if not self.paginated:
            return {}
        links = {"first": 0, "last": self.last_index}
        if self.index > 0:
            links["prev"] = min(self.index - 1, self.last_index)
        if self.index < self.last_index:
            links["next"] = self.index + 1
        return links


def paging_key(pseudonym_key: bytes) -> bytes:
    """The paging MAC key, derived from an instance key with its own label (so a paging
    token can never be mistaken for anything else the instance signs)."""
    return hmac.new(pseudonym_key, b"stetgate/psd2-paging-links", hashlib.sha256).digest()
