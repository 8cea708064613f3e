"""The doctor's pure judgements: rotation against the expectation, the X-Request-ID echo, the
STET error structure, schema violations — each refusal first."""

from __future__ import annotations

import json

import httpx
import pytest

from stetgate.tpp.client import AuthorizationRequest
from stetgate.tpp.doctor import stet_schemas as schemas
from stetgate.tpp.doctor.checks.authorization import callback_parameters, judge_issuers
from stetgate.tpp.doctor.checks.resources import error_body_problem, unechoed
from stetgate.tpp.doctor.checks.tokens import judge_rotation
from stetgate.tpp.doctor.expectations import RefreshRotation
from stetgate.tpp.doctor.journeys import Walked
from stetgate.tpp.doctor.model import Outcome
from stetgate.tpp.doctor.recording import Exchange

STET_ERROR = {"status": 404, "message": "unknown account", "error": "Not Found"}


@pytest.mark.parametrize(
    ("expected", "rotated", "outcome"),
    [
        (RefreshRotation.SAME, True, Outcome.FAIL),
        (RefreshRotation.ROTATED, False, Outcome.FAIL),
        (RefreshRotation.UNKNOWN, True, Outcome.INFO),
        (RefreshRotation.UNKNOWN, False, Outcome.INFO),
        (RefreshRotation.SAME, False, Outcome.PASS),
        (RefreshRotation.ROTATED, True, Outcome.PASS),
    ],
)
def test_rotation_is_judged_against_what_the_bank_documents(
    expected: RefreshRotation, rotated: bool, outcome: Outcome
) -> None:
    assert judge_rotation(expected, rotated=rotated)[0] is outcome


def _exchange(sent: str | None, echoed: str | None) -> Exchange:
    return Exchange("GET", "/stet/psd2/v1.4.2/accounts", 200, sent, echoed)


def test_an_answer_without_the_request_id_is_unechoed() -> None:
    assert unechoed([_exchange("a", None)]) == [_exchange("a", None)]


def test_an_answer_with_another_request_id_is_unechoed() -> None:
    assert unechoed([_exchange("a", "b")]) == [_exchange("a", "b")]


def test_a_request_id_echoed_in_another_case_is_unechoed() -> None:
    """STET: the same value; an id is opaque, not case-insensitive."""
    assert len(unechoed([_exchange("abc", "ABC")])) == 1


def test_requests_sent_without_an_id_are_not_judged() -> None:
    assert unechoed([_exchange(None, None)]) == []


def test_an_exact_echo_passes() -> None:
    assert unechoed([_exchange("a", "a")]) == []


def _answer(status: int, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"Content-Type": "application/json"})


def test_a_success_is_not_an_error_answer() -> None:
    assert error_body_problem(_answer(200, STET_ERROR)) is not None


def test_an_error_that_is_not_json_is_refused() -> None:
    assert error_body_problem(_answer(404, b"<html>not found</html>")) == "the body is not JSON"


def test_an_error_in_another_shape_is_refused() -> None:
    problem = error_body_problem(_answer(404, {"errors": [{"code": "404", "detail": "x"}]}))
    assert problem is not None and "STET error structure" in problem


def test_an_error_without_message_is_refused() -> None:
    assert error_body_problem(_answer(404, {"status": 404})) is not None


def test_an_error_message_longer_than_140_characters_is_refused() -> None:
    assert error_body_problem(_answer(404, {"status": 404, "message": "x" * 141})) is not None


def test_an_error_whose_status_member_is_not_the_http_status_is_refused() -> None:
    problem = error_body_problem(_answer(403, STET_ERROR))
    assert problem == "status member 404 is not the HTTP status"


def test_a_stet_error_answer_passes() -> None:
    assert error_body_problem(_answer(404, STET_ERROR)) is None


def test_a_violation_names_where_the_document_breaks_the_schema() -> None:
    document = {"accounts": [{"resourceId": "a"}], "_links": {"self": {"href": "/x"}}}
    problem = schemas.violation(document, schemas.ACCOUNTS)
    assert problem is not None and problem.startswith("accounts/0")


def test_a_document_that_follows_the_schema_has_no_violation() -> None:
    assert (
        schemas.violation(
            {"connectedPsu": "M", "_links": {"self": {"href": "/i"}}}, schemas.END_USER_IDENTITY
        )
        is None
    )


def test_callback_parameters_take_the_first_value_of_each() -> None:
    request = AuthorizationRequest("", "s", None, "https://tpp.example/cb", "aisp")
    walked = Walked(request, "https://tpp.example/cb?code=c&state=s&state=t&iss=https%3A%2F%2Fb")
    assert callback_parameters(walked) == {"code": "c", "state": "s", "iss": "https://b"}


ISSUER = "https://bank.example"


def test_an_iss_of_another_issuer_fails_even_when_not_announced() -> None:
    assert (
        judge_issuers([ISSUER, "https://evil.example"], ISSUER, announced=False)[0] is Outcome.FAIL
    )


def test_a_missing_iss_fails_when_the_metadata_announces_it() -> None:
    assert judge_issuers([ISSUER, None], ISSUER, announced=True)[0] is Outcome.FAIL


def test_a_missing_iss_differs_when_the_bank_does_not_announce_it() -> None:
    assert judge_issuers([None, None], ISSUER, announced=False)[0] is Outcome.DIFFERS


def test_the_issuer_in_every_callback_passes() -> None:
    assert judge_issuers([ISSUER, ISSUER], ISSUER, announced=True)[0] is Outcome.PASS
