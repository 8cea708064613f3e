"""The PSU's part of the cinematic (steps 2 to 4, STET v1.4.2 Part I §3.4.3): from the
authorization URL to the callback URL the bank redirects the browser to.

Two ways, one port: `RobotJourney` fills stetgate's documented PSU forms over HTTP
(`stetgate.tpp.psu_robot`), fast enough to run several journeys (refused, CBPII) in one doctor
run; `BrowserJourney` prints the URL for a human and catches the callback on the loopback
(`stetgate.tpp.callback_listener`, RFC 8252 §7.3), for banks whose pages the robot cannot read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from stetgate.tpp.callback_listener import CallbackListener, LocalTls
from stetgate.tpp.client import AuthorizationRequest, StetBankClient
from stetgate.tpp.psu_robot import PsuJourneyError, PsuRobot


@dataclass(frozen=True)
class Walked:
    """The request the TPP made and the callback URL the PSU's browser came back with."""

    request: AuthorizationRequest
    callback_url: str


class PsuJourney(Protocol):
    automated: bool
    """True when the journey can be repeated without a human (the refused and CBPII
    journeys are then checked too)."""

    def walk(self, client: StetBankClient, scope: str, *, refuse: bool = False) -> Walked:
        """Run one authorization; ``refuse``: the PSU refuses at the consent step."""
        ...


@dataclass
class RobotJourney:
    robot: PsuRobot
    browser: httpx.Client
    """The PSU's browser: trusts the bank, presents no client certificate."""
    redirect_uri: str
    """A redirect URI registered for the client; the robot stops at it without fetching it."""
    automated: bool = True

    def walk(self, client: StetBankClient, scope: str, *, refuse: bool = False) -> Walked:
        request = client.authorization_request(scope, self.redirect_uri)
        robot = dataclasses.replace(self.robot, decision="refuse" if refuse else "authorize")
        callback = robot.walk(self.browser, request.url, self.redirect_uri)
        return Walked(request, callback)


@dataclass
class BrowserJourney:
    tls: LocalTls
    registered_redirect_uri: str
    """A loopback redirect URI registered for the client (``https://127.0.0.1/callback``)."""
    announce: Callable[[str], None]
    """Shows the authorization URL to the human."""
    timeout_seconds: float = 600.0
    automated: bool = False

    def walk(self, client: StetBankClient, scope: str, *, refuse: bool = False) -> Walked:
        if refuse:
            raise PsuJourneyError("a refused journey needs the PSU robot")
        path = httpx.URL(self.registered_redirect_uri).path or "/"
        with CallbackListener(self.tls, path=path) as listener:
            request = client.authorization_request(
                scope, listener.redirect_uri(self.registered_redirect_uri)
            )
            listener.start(request.state)
            self.announce(request.url)
            callback = listener.wait(self.timeout_seconds)
            listener.answer("received: the doctor goes on in the terminal")
        if callback is None:
            raise PsuJourneyError(f"no callback within {self.timeout_seconds:g} s")
        return Walked(request, callback)
