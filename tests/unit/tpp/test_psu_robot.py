"""The scripted PSU follows the documented form fields and stops at the callback."""

from __future__ import annotations

import httpx
import pytest

from stetgate.tpp.psu_robot import PsuJourneyError, PsuRobot

PAGES = {
    "/authorize": (302, {"location": "/psu/identify"}, ""),
    "/psu/identify": (
        200,
        {},
        '<form method="post" action="/psu/identify">'
        '<input type="hidden" name="csrf_token" value="t1">'
        '<label for="p">Id</label><input id="p" name="psu_id">'
        '<input type="password" name="password"><button>OK</button></form>',
    ),
    "/psu/otp": (
        200,
        {},
        '<form method="post"><input type="hidden" name="csrf_token" value="t2">'
        '<input name="otp"></form>',
    ),
    "/psu/consent": (
        200,
        {},
        '<form method="post" action="/psu/consent">'
        '<input type="hidden" name="csrf_token" value="t3">'
        '<button name="decision" value="authorize">Autoriser</button>'
        '<button name="decision" value="refuse">Refuser</button></form>',
    ),
}
NEXT = {
    "/psu/identify": "/psu/otp",
    "/psu/otp": "/psu/consent",
    "/psu/consent": "https://tpp.example/cb?code=C&state=s",
}


def _bank(posted: list[tuple[str, bytes]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            posted.append((path, request.content))
            return httpx.Response(303, headers={"location": NEXT[path]})
        status, headers, body = PAGES[path]
        return httpx.Response(status, headers=headers, text=body)

    return httpx.MockTransport(handler)


def test_robot_walks_identify_otp_consent_and_returns_the_callback() -> None:
    posted: list[tuple[str, bytes]] = []
    robot = PsuRobot("alice", "pw", otp=lambda: "123456")
    with httpx.Client(base_url="https://bank.test", transport=_bank(posted)) as client:
        url = robot.walk(client, "https://bank.test/authorize", "https://tpp.example/cb")
    assert url == "https://tpp.example/cb?code=C&state=s"
    assert [p for p, _ in posted] == ["/psu/identify", "/psu/otp", "/psu/consent"]
    assert b"psu_id=alice" in posted[0][1] and b"csrf_token=t1" in posted[0][1]
    assert b"otp=123456" in posted[1][1]
    assert b"decision=authorize" in posted[2][1]


def test_robot_refuses_when_asked_for_a_code_it_does_not_have() -> None:
    with (
        httpx.Client(base_url="https://bank.test", transport=_bank([])) as client,
        pytest.raises(PsuJourneyError, match="one-time code"),
    ):
        PsuRobot("alice", "pw").walk(client, "https://bank.test/authorize", "https://tpp.example/")


def test_robot_reports_an_error_page() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(400, text="unknown client"))
    with httpx.Client(transport=transport) as client, pytest.raises(PsuJourneyError, match="400"):
        PsuRobot("a", "b").walk(client, "https://bank.test/authorize", "https://tpp.example/")
