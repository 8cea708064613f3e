"""Paging tokens: bound to their listing, tamper-evident, short-lived; page arithmetic."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from stetgate.psd2.errors import BadRequest
from stetgate.psd2.paging import (
    MAX_LINK_LENGTH,
    Listing,
    Page,
    PagingTokens,
    pack_state,
    paging_key,
    unpack_state,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LISTING = Listing("PSDFR-ACPR-1", "jdupont", "transactions", "A1")
TOKENS = PagingTokens(paging_key(b"k" * 32))


def test_a_token_opens_to_its_state_and_keeps_psu_data_out_of_the_url() -> None:
    token = TOKENS.issue(LISTING, {"p": 2, "s": 140, "f": "2026-09-01"}, NOW)
    assert TOKENS.open(token, LISTING, NOW + timedelta(minutes=14)) == {
        "p": 2,
        "s": 140,
        "f": "2026-09-01",
    }
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"jdupont" not in payload and b"PSDFR" not in payload


@pytest.mark.parametrize(
    "other",
    [
        Listing("PSDFR-ACPR-2", "jdupont", "transactions", "A1"),
        Listing("PSDFR-ACPR-1", "mdupont", "transactions", "A1"),
        Listing("PSDFR-ACPR-1", "jdupont", "transactions", "A2"),
        Listing("PSDFR-ACPR-1", "jdupont", "accounts", "A1"),
    ],
)
def test_a_token_works_for_no_other_listing(other: Listing) -> None:
    token = TOKENS.issue(LISTING, {"p": 1}, NOW)
    with pytest.raises(BadRequest, match="not a paging link of this listing"):
        TOKENS.open(token, other, NOW)


def test_a_token_of_another_bank_or_a_forged_state_is_refused() -> None:
    token = PagingTokens(paging_key(b"z" * 32)).issue(LISTING, {"p": 1}, NOW)
    with pytest.raises(BadRequest):
        TOKENS.open(token, LISTING, NOW)
    genuine = TOKENS.issue(LISTING, {"p": 1, "s": 10}, NOW)
    forged_payload = (
        base64.urlsafe_b64encode(pack_state({"p": 1, "s": 99999}, int(NOW.timestamp())))
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(BadRequest):
        TOKENS.open(f"{forged_payload}.{genuine.split('.')[1]}", LISTING, NOW)
    for garbage in ("", "abc", "a.b", "!!!.AAAAAAAAAAAAAAAAAAAAAA", "x" * 2000):
        with pytest.raises(BadRequest):
            TOKENS.open(garbage, LISTING, NOW)


def test_tokens_expire_after_their_lifetime() -> None:
    token = TOKENS.issue(LISTING, {"p": 1}, NOW)
    with pytest.raises(BadRequest, match="expired"):
        TOKENS.open(token, LISTING, NOW + timedelta(minutes=15, seconds=1))
    with pytest.raises(BadRequest, match="expired"):
        TOKENS.open(token, LISTING, NOW - timedelta(minutes=2))


def test_a_full_transactions_token_keeps_the_link_within_stets_140_characters() -> None:
    """STET ``GenericLink.href`` maxLength 140 (an outside conformance run found 173–184)."""
    state = {"p": 999, "s": 123_456, "e": 123_000, "f": "2026-09-01", "t": "2026-11-30"}
    token = TOKENS.issue(LISTING, state, NOW)
    href = f"/stet/psd2/v1.4.2/accounts/{'A' * 35}/transactions?page={token}"
    assert len(href) <= MAX_LINK_LENGTH, len(href)
    assert TOKENS.open(token, LISTING, NOW) == state


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x00p",
        b"\x00\x00\x00\x00p\x80\x80",
        b"\x00\x00\x00\x00p\x01p\x02",
        b"\x00\x00\x00\x00?\x01",
        b"\x00\x00\x00\x00F\x00",
    ],
)
def test_malformed_states_do_not_unpack(payload: bytes) -> None:
    with pytest.raises((ValueError, OverflowError)):
        unpack_state(payload)


@pytest.mark.parametrize("state", [{"pp": 1}, {"P": 1}, {"p": -1}, {"p": True}, {"p": 1.5}])
def test_states_outside_the_format_are_not_issued(state: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        pack_state(state, 0)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        PagingTokens(b"short")


@pytest.mark.parametrize(
    "index, total, links",
    [
        (0, 0, {}),
        (0, 50, {}),
        (0, 51, {"first": 0, "last": 1, "next": 1}),
        (1, 51, {"first": 0, "last": 1, "prev": 0}),
        (2, 150, {"first": 0, "last": 2, "prev": 1}),
        (1, 150, {"first": 0, "last": 2, "prev": 0, "next": 2}),
        (9, 150, {"first": 0, "last": 2, "prev": 2}),
    ],
)
def test_page_links(index: int, total: int, links: dict[str, int]) -> None:
    page = Page(index, 50, total)
    assert page.neighbours() == links
    assert page.offset == index * 50
