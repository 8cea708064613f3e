"""An untrusted callback as a value (RFC 6749 §4.1.2.1): the English audit reason keeps its
wording, and the code the refusal page's language links carry names only known refusals."""

from __future__ import annotations

import pytest

from stetgate.oauth.untrusted_callback import (
    CALLBACK_PARAMETERS,
    ParameterProblem,
    UntrustedCallback,
)
from stetgate.psu.texts import TEXTS


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (UntrustedCallback("client_id", ParameterProblem.MISSING), "client_id is missing"),
        (UntrustedCallback("client_id", ParameterProblem.UNKNOWN_CLIENT), "unknown client_id"),
        (
            UntrustedCallback("redirect_uri", ParameterProblem.NOT_REGISTERED),
            "redirect_uri is not registered for this client",
        ),
        (
            UntrustedCallback("redirect_uri", ParameterProblem.BAD_CHARACTERS),
            "redirect_uri has characters outside %x20-7E",
        ),
    ],
)
def test_the_audit_reason_keeps_its_english_wording(
    refusal: UntrustedCallback, reason: str
) -> None:
    assert refusal.reason == reason


@pytest.mark.parametrize("parameter", CALLBACK_PARAMETERS)
@pytest.mark.parametrize("problem", list(ParameterProblem))
def test_every_refusal_round_trips_through_its_code_and_has_a_message(
    parameter: str, problem: ParameterProblem
) -> None:
    refusal = UntrustedCallback(parameter, problem)
    assert UntrustedCallback.from_code(refusal.code) == refusal
    for texts in TEXTS.values():
        assert "{parameter}" in texts[f"refusal_{problem.key}"]


@pytest.mark.parametrize(
    "code",
    [
        "",
        ".",
        "state.missing",
        "client_id",
        "client_id.",
        "client_id.MISSING",
        "client_id.is missing",
    ],
)
def test_a_code_that_names_no_refusal_is_none(code: str) -> None:
    assert UntrustedCallback.from_code(code) is None
