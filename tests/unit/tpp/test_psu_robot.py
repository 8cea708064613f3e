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


# --- a bank that delegates the login to its identity provider -------------------------------
IDP_PAGE = (
    '<form method="post" action="/abort"><button>Cancel</button></form>'
    '<form method="post" action="/interaction/u1/login">'
    '<input type="hidden" name="uid" value="u1">'
    '<input name="login"><input name="acr" value="weak"><button>Sign in</button></form>'
)


def _delegating_bank(posted: list[tuple[str, bytes]], idp_page: str = IDP_PAGE) -> httpx.Client:
    """/authorize → the IdP's login page (another host) → back to the bank's consent."""

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?")[0]
        if request.method == "POST":
            posted.append((request.url.path, request.content))
            following = {
                "https://idp.test/interaction/u1/login": "https://bank.test/psu/consent",
                "https://bank.test/psu/consent": "https://tpp.example/cb?code=C&state=s",
            }
            return httpx.Response(303, headers={"location": following.get(url, "/error")})
        if url == "https://bank.test/authorize":
            return httpx.Response(302, headers={"location": "https://idp.test/auth?x=1"})
        if url == "https://idp.test/auth":
            return httpx.Response(303, headers={"location": "/interaction/u1"})
        if url == "https://idp.test/interaction/u1":
            return httpx.Response(200, text=idp_page)
        if url == "https://bank.test/psu/consent":
            status, headers, body = PAGES["/psu/consent"]
            return httpx.Response(status, headers=headers, text=body)
        return httpx.Response(404, text=f"no {url}")

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_robot_fills_the_identity_providers_form_by_field_name() -> None:
    posted: list[tuple[str, bytes]] = []
    robot = PsuRobot("alice", "", form_values={"login": "alice", "acr": "urn:bank:sca"})
    with _delegating_bank(posted) as client:
        url = robot.walk(client, "https://bank.test/authorize", "https://tpp.example/cb")
    assert url == "https://tpp.example/cb?code=C&state=s"
    # The form with the given fields, not the first form of the page (Cancel); hidden kept.
    assert [p for p, _ in posted] == ["/interaction/u1/login", "/psu/consent"]
    assert posted[0][1] == b"uid=u1&login=alice&acr=urn%3Abank%3Asca"
    assert b"decision=authorize" in posted[1][1]


def test_robot_without_form_values_does_not_sign_in_at_the_identity_provider() -> None:
    """Nothing to fill: the first form is posted as it is (here Cancel) — the robot invents no
    login, and the journey does not reach the callback."""
    posted: list[tuple[str, bytes]] = []
    with _delegating_bank(posted) as client, pytest.raises(PsuJourneyError, match="404"):
        PsuRobot("alice", "").walk(client, "https://bank.test/authorize", "https://tpp.example/cb")
    assert [p for p, _ in posted] == ["/abort"]


def test_form_values_do_not_override_the_banks_documented_forms() -> None:
    posted: list[tuple[str, bytes]] = []
    robot = PsuRobot(
        "alice", "pw", otp=lambda: "123456", form_values={"psu_id": "mallory", "otp": "000000"}
    )
    with httpx.Client(base_url="https://bank.test", transport=_bank(posted)) as client:
        robot.walk(client, "https://bank.test/authorize", "https://tpp.example/cb")
    assert b"psu_id=alice" in posted[0][1] and b"mallory" not in posted[0][1]
    assert b"otp=123456" in posted[1][1]


def test_form_values_on_a_page_without_those_fields_post_the_first_form_unchanged() -> None:
    page = '<form method="post" action="/interaction/u1/login"><input name="user"></form>'
    posted: list[tuple[str, bytes]] = []
    robot = PsuRobot("alice", "", form_values={"login": "alice"})
    with _delegating_bank(posted, page) as client:
        robot.walk(client, "https://bank.test/authorize", "https://tpp.example/cb")
    assert posted[0] == ("/interaction/u1/login", b"")


@pytest.mark.parametrize(
    "location",
    [
        "https://tpp.example/cb.evil?code=C&state=s",
        "https://tpp.example/cb/more?code=C&state=s",
        "https://tpp.example.evil/cb?code=C&state=s",
        "https://tpp.example:8443/cb?code=C&state=s",
    ],
)
def test_a_redirect_that_only_starts_like_the_callback_is_not_the_callback(location: str) -> None:
    """RFC 6749 §3.1.2: the bank may add query parameters to the redirect URI, nothing else;
    the robot follows anything else as a bank page (here: a host the bank does not serve)."""
    next_step = dict(NEXT, **{"/psu/consent": location})

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host != "bank.test":
            return httpx.Response(404, text="not the bank")
        if request.method == "POST":
            return httpx.Response(303, headers={"location": next_step[path]})
        status, headers, body = PAGES[path]
        return httpx.Response(status, headers=headers, text=body)

    robot = PsuRobot("alice", "pw", otp=lambda: "123456")
    with (
        httpx.Client(base_url="https://bank.test", transport=httpx.MockTransport(handler)) as c,
        pytest.raises(PsuJourneyError, match="404"),
    ):
        robot.walk(c, "https://bank.test/authorize", "https://tpp.example/cb")
