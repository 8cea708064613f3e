"""The sandbox's banking app talking to the demo SCA service (`stetgate.sca_http.demo_service`)
instead of stetgate's database: what the demo phone page and ``stetgate psu approve|reject|
challenges`` use when ``sca_http_url`` is set. Those endpoints (``/app/…``) belong to the demo
service, not to the contract: a real bank's app talks to its own SCA service its own way.

Synchronous httpx: the phone page calls it inside its hop off the event loop.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import httpx

from stetgate.psu.decoupled import PendingChallenge


class DemoAppError(Exception):
    """The demo SCA service could not be reached or gave an unusable answer."""


class DemoApp:
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout

    def pending(self, psu_id: str) -> list[PendingChallenge]:
        try:
            with httpx.Client(base_url=self._url, timeout=self._timeout) as http:
                response = http.get("/app/challenges", params={"psu_id": psu_id})
                response.raise_for_status()
                items = response.json()["challenges"]
            return [
                PendingChallenge(
                    challenge_id=item["reference"].replace("-", ""),
                    reference=item["reference"],
                    client_name=item.get("tpp_name"),
                    started_at=datetime.fromisoformat(item["created_at"]),
                )
                for item in items
            ]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise DemoAppError(f"demo SCA service at {self._url}: {exc!r}") from exc

    def answer(self, challenge: str, *, approve: bool, psu_id: str | None = None) -> bool:
        """Approve or reject by reference (or service id); False when no such pending
        challenge (for `psu_id`, when given). The service then delivers its callback."""
        body: dict[str, str] = {"decision": "approve" if approve else "reject"}
        if psu_id is not None:
            body["psu_id"] = psu_id
        path = f"/app/challenges/{quote(challenge.strip(), safe='')}/answer"
        try:
            with httpx.Client(base_url=self._url, timeout=self._timeout) as http:
                response = http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise DemoAppError(f"demo SCA service at {self._url}: {exc!r}") from exc
        if response.status_code in (404, 409):
            return False
        if response.status_code != 200:
            raise DemoAppError(f"demo SCA service at {self._url}: HTTP {response.status_code}")
        return True
