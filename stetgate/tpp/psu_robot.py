"""A scripted PSU for automated TPP tests: follows the bank's documented PSU forms.

stetgate's PSU pages have stable form field names (docs/authorization-flow.md): ``psu_id`` and
``password`` on identification, ``method`` to choose the SCA method, ``otp`` for the one-time
code, ``decision`` (``authorize``/``refuse``) on consent, and a hidden ``csrf_token`` on every
form. The robot reads each page's form (action, hidden fields) from the HTML, fills what it
knows, and stops at the redirect to the TPP's callback, which it returns without fetching it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx


class PsuJourneyError(RuntimeError):
    """The bank showed something the robot cannot act on (error page, unexpected form)."""


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    choices: dict[str, list[str]] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(_Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag in ("input", "button", "select") and self.forms and a.get("name"):
            form = self.forms[-1]
            name = a["name"]
            form.names.add(name)
            kind = a.get("type", "text" if tag == "input" else "submit")
            if kind == "hidden":
                form.fields[name] = a.get("value", "")
            elif kind in ("submit", "radio") and "value" in a:
                form.choices.setdefault(name, []).append(a["value"])

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


@dataclass
class PsuRobot:
    """Walks one authorization journey as PSU ``psu_id``.

    ``otp`` returns the current one-time code (e.g. from the TOTP secret); ``approve`` is
    called for the decoupled method with the page text (to approve in the "banking app").
    ``form_values`` fills, by field name, a form that is none of the bank's documented ones
    (the first one of the page that has one of these fields: an identity provider's login).
    """

    psu_id: str
    password: str
    otp: Callable[[], str] | None = None
    approve: Callable[[str], None] | None = None
    method: str | None = None
    decision: str = "authorize"
    form_values: Mapping[str, str] = field(default_factory=dict)
    max_steps: int = 12

    def walk(self, client: httpx.Client, authorize_url: str, callback_prefix: str) -> str:
        """Return the callback URL (with ``code``/``error``) the bank redirects to."""
        response = client.get(authorize_url, follow_redirects=False)
        for _ in range(self.max_steps):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if _is_callback(location, callback_prefix):
                    return location
                response = client.get(location, follow_redirects=False)
                continue
            if response.status_code != 200:
                raise PsuJourneyError(
                    f"bank answered {response.status_code}: {response.text[:300]}"
                )
            response = self._submit(client, response)
        raise PsuJourneyError("too many steps without reaching the callback")

    def _submit(self, client: httpx.Client, page: httpx.Response) -> httpx.Response:
        parser = _FormParser()
        parser.feed(page.text)
        posting = [f for f in parser.forms if f.method == "post"]
        form = next((f for f in posting if f.names & self.form_values.keys()), None)
        form = form or next(iter(posting), None)
        if form is None:
            raise PsuJourneyError(f"no form on the page: {' '.join(parser.text)[:300]}")
        data = dict(form.fields)
        if "psu_id" in form.names:
            data.update(psu_id=self.psu_id, password=self.password)
        elif "method" in form.names:
            data["method"] = self.method or form.choices.get("method", ["totp"])[0]
        elif "otp" in form.names:
            if self.otp is None:
                raise PsuJourneyError("the bank asks for a one-time code and none was given")
            data["otp"] = self.otp()
        elif "decision" in form.names:
            data["decision"] = self.decision
        elif form.names & self.form_values.keys():
            data.update({k: v for k, v in self.form_values.items() if k in form.names})
        elif self.approve is not None:
            self.approve(" ".join(parser.text))
        action = urljoin(str(page.url), form.action or str(page.url))
        return client.post(action, data=data, follow_redirects=False)


def _is_callback(location: str, redirect_uri: str) -> bool:
    """The redirect is to ``redirect_uri`` itself (scheme, host, port and path equal; RFC 6749
    §3.1.2 lets the bank add query parameters only), not to a URL that merely starts with it
    (``https://tpp.example/cb.evil``)."""
    got, want = urlsplit(location), urlsplit(redirect_uri)
    return (got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path)
