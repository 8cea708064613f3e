"""Fuzzing every endpoint of a real bank: schemathesis over the STET resource API (each request
signed with the TPP's QSealC, real tokens), hypothesis-generated forms and documents over the
OAuth endpoints, the PSU pages and the register API.

A request *fails* when the answer is a 5xx, or when it breaks the endpoint's contract: the
OpenAPI document for the STET API (status codes, media types, headers, body schemas, negative
data refused), and for the others what their RFCs say an answer is (an RFC 6749 §5.2 JSON
error with ``no-store``, an RFC 7662 body with ``active``, an RFC 7591 §3.2.2 error, an HTML
page or a 303 for the PSU). Nothing is stopped at the first failure: `FuzzReport` counts them
all, by target, with the first few messages. Used by ``scripts/fuzz.py`` (10,000 requests and
more) and by ``tests/security/test_fuzz.py`` (a few hundred, in CI).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stetgate.httpsig import compute_digest, required_signed_headers, sign_request
from stetgate.psd2.consents import Consent, replace_consent
from stetgate.psd2.routes import OPENAPI_FILE
from stetgate.registry.registrations import REGISTER_PATH
from tests.integration.psd2_support import API, ApiWorld, Signer
from tests.unit.registry.register_client import RegisteringTpp

STET_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def stet_schema() -> Any:
    """The served OpenAPI document of the resource API, as schemathesis reads it. Invalid data
    may also be refused with 413 (a body over ``max_body_bytes``, documented for the
    operations that take one)."""
    schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_FILE.read_text()))
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


class SignedCaller:
    """Sends schemathesis cases the way a TPP would, with valid credentials, to a bank where
    the PSU consented to everything (restored before each case, as cases replace it)."""

    def __init__(self, world: ApiWorld) -> None:
        world.reset()
        self.world = world
        self.http = world.bank.client(world.tpp_certs)
        self.signer = Signer.of(world.tpp_certs)
        self.tokens = {
            "aisp": world.token("jdupont", "aisp"),
            "cbpii": world.token("jdupont", "cbpii"),
        }
        self.accounts = world.accounts_of("jdupont")
        ids = frozenset(a.resource_id for a in self.accounts)
        self.consent = Consent(ids, ids, True, True)
        self.turn = 0

    def consent_to_everything(self) -> None:
        with self.world.engine.begin() as conn:
            replace_consent(
                conn, "jdupont", self.world.tpp_certs.org_id, self.consent, self.world.clock.now()
            )

    def real_account(self) -> Any:
        """One of the PSU's accounts, in turn, so valid cases also reach existing ones."""
        self.turn += 1
        return self.accounts[self.turn % len(self.accounts)]

    def send(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        headers: dict[str, str],
        body: bytes,
        scope: str,
    ) -> httpx.Response:
        values = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("authorization", "digest", "signature", "content-length")
        }
        values["Authorization"] = f"Bearer {self.tokens[scope]}"
        if body:
            values.setdefault("Content-Type", "application/json")
            values["Digest"] = compute_digest(body)
        request = self.http.build_request(
            method, path, params=params, headers=values, content=body or None
        )
        if "signature" not in {k.lower() for k in headers}:
            return self.http.send(request)  # a negative case without the required Signature
        target = request.url.raw_path.decode("ascii")
        signed = list(dict.fromkeys(["(request-target)", *required_signed_headers(values, body)]))
        if "x-request-id" not in {k.lower() for k in values}:
            signed.remove("x-request-id")  # a request without it must still reach the 400
        request.headers["Signature"] = sign_request(
            method, target, values, self.signer.key, self.signer.key_id, signed
        )
        return self.http.send(request)

    def send_case(self, case: schemathesis.Case) -> httpx.Response:
        """Consent restored, a real account named in valid cases, then signed and sent."""
        self.consent_to_everything()
        point_at_real_accounts(case, self)
        kwargs = case.as_transport_kwargs(base_url=API)
        scope = "cbpii" if case.path == "/funds-confirmations" else "aisp"
        return self.send(
            case.method,
            API + case.formatted_path,
            dict(kwargs.get("params") or {}),
            dict(kwargs.get("headers") or {}),
            case_body(kwargs),
            scope,
        )

    def close(self) -> None:
        self.http.close()


def point_at_real_accounts(case: schemathesis.Case, caller: SignedCaller) -> None:
    """Valid (positive) cases name one of the PSU's accounts: random ids would all be 404."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.path_parameters and "accountResourceId" in case.path_parameters:
        case.path_parameters["accountResourceId"] = caller.real_account().resource_id
    if case.path == "/funds-confirmations" and isinstance(case.body, dict):
        account = caller.real_account()
        case.body["accountId"] = (
            {"iban": account.iban}
            if account.iban
            else {"other": {"identification": account.other_identification, "schemeName": "CPAN"}}
        )
        amount = case.body.get("instructedAmount")
        if isinstance(amount, dict):
            amount["currency"] = "EUR"


def case_body(kwargs: dict[str, Any]) -> bytes:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if data is None:
        return b""
    return data if isinstance(data, bytes) else str(data).encode()


# --- what was seen ------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """Requests sent, 5xx answers and contract violations, by target."""

    requests: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def failed(self) -> bool:
        return bool(self.server_errors or self.violations)

    def record(self, target: str, response: httpx.Response, problems: list[str]) -> None:
        self.requests[target] += 1
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.server_errors[target] += 1
            problems = [f"{response.status_code}: {response.text[:200]}", *problems]
        elif problems:
            self.violations[target] += 1
        if problems and len(self.examples) < 20:
            request = response.request
            self.examples.append(f"{target} {request.method} {request.url}: {'; '.join(problems)}")

    def no_answer(self, target: str, problem: str) -> None:
        """The bank dropped or broke the connection instead of answering."""
        self.requests[target] += 1
        self.server_errors[target] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{target}: no answer: {problem}")

    def lines(self) -> list[str]:
        out = [f"{'target':<34}{'requests':>9}{'5xx':>6}{'violations':>11}"]
        for target in sorted(self.requests):
            out.append(
                f"{target:<34}{self.requests[target]:>9}{self.server_errors[target]:>6}"
                f"{self.violations[target]:>11}"
            )
        out.append(
            f"{'total':<34}{self.total:>9}{sum(self.server_errors.values()):>6}"
            f"{sum(self.violations.values()):>11}"
        )
        out.append("statuses: " + ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items())))
        out.extend(f"  {example}" for example in self.examples)
        return out


# --- contracts of the non-OpenAPI endpoints ------------------------------------------------------

OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "unsupported_token_type",
        "temporarily_unavailable",
        "invalid_token",
        "insufficient_scope",
        "access_denied",
    }
)
REGISTER_ERRORS = OAUTH_ERRORS | {
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "invalid_software_statement",
    "unapproved_software_statement",
}
_REQUEST_ID = re.compile(r"[!-~]{1,100}")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def oauth_error_problems(response: httpx.Response, errors: frozenset[str]) -> list[str]:
    """RFC 6749 §5.2: a JSON object with a registered ``error``, optional string
    ``error_description``, never cached."""
    problems: list[str] = []
    body = _json_object(response)
    if body is None or not response.headers.get("content-type", "").startswith("application/json"):
        return [f"{response.status_code} is not a JSON error object"]
    if body.get("error") not in errors:
        problems.append(f"unknown error {body.get('error')!r}")
    if not isinstance(body.get("error_description", ""), str):
        problems.append("error_description is not a string")
    if "no-store" not in response.headers.get("cache-control", ""):
        problems.append("error without Cache-Control: no-store")
    if response.status_code == 503 and "retry-after" not in response.headers:
        problems.append("503 without Retry-After")
    return problems


def token_problems(response: httpx.Response) -> list[str]:
    """RFC 6749 §5.1 / §5.2."""
    if response.status_code == 200:
        body = _json_object(response) or {}
        problems = [
            f"missing {name}"
            for name in ("access_token", "token_type", "expires_in")
            if name not in body
        ]
        if "no-store" not in response.headers.get("cache-control", ""):
            problems.append("token without Cache-Control: no-store")
        return problems
    if response.status_code not in (400, 401, 403, 405, 413, 415, 503):
        return [f"unexpected status {response.status_code}"]
    return oauth_error_problems(response, OAUTH_ERRORS)


def revoke_problems(response: httpx.Response) -> list[str]:
    """RFC 7009 §2.2: 200 whether or not the token existed; §2.2.1 errors."""
    if response.status_code == 200:
        return []
    if response.status_code not in (400, 401, 403, 405, 413, 415, 503):
        return [f"unexpected status {response.status_code}"]
    return oauth_error_problems(response, OAUTH_ERRORS)


def introspect_problems(response: httpx.Response) -> list[str]:
    """RFC 7662 §2.2: a JSON object whose ``active`` is a boolean (only that when inactive)."""
    if response.status_code == 200:
        body = _json_object(response)
        if body is None or not isinstance(body.get("active"), bool):
            return ["200 without a boolean active"]
        if body["active"] is False and set(body) != {"active"}:
            return ["an inactive token is described beyond active=false"]
        return []
    if response.status_code not in (400, 401, 403, 405, 413, 415, 503):
        return [f"unexpected status {response.status_code}"]
    return oauth_error_problems(response, OAUTH_ERRORS)


def page_problems(response: httpx.Response) -> list[str]:
    """PSU pages and /authorize: a 303 with a Location, or an HTML page (4xx or 200)."""
    if response.status_code in (302, 303):
        return [] if response.headers.get("location") else ["redirect without Location"]
    if response.status_code == 405:
        return []
    if not response.headers.get("content-type", "").startswith("text/html"):
        return [
            f"{response.status_code} is not an HTML page "
            f"({response.headers.get('content-type')}: {response.text[:80]!r})"
        ]
    if "Traceback" in response.text:
        return ["a traceback in the page"]
    return []


def register_problems(response: httpx.Response, sent_request_id: str | None) -> list[str]:
    """RFC 7591 §3.2.1 / §3.2.2, the request id echoed when it was well formed."""
    problems: list[str] = []
    if response.status_code in (200, 201, 204):
        pass
    elif response.status_code not in (400, 401, 403, 404, 405, 413, 415, 503):
        problems.append(f"unexpected status {response.status_code}")
    elif response.status_code != 405:
        problems.extend(oauth_error_problems(response, frozenset(REGISTER_ERRORS)))
    if (
        sent_request_id is not None
        and _REQUEST_ID.fullmatch(sent_request_id)
        and response.status_code != 405
        and response.headers.get("x-request-id") != sent_request_id
    ):
        problems.append("X-Request-ID not echoed")
    return problems


# --- generated inputs ---------------------------------------------------------------------------

_text = st.text(max_size=80)
_printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
_garbage_bytes = st.binary(max_size=300)
_path_segment = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"), max_size=40
)
"""One path segment (a ``/`` or its escape would name another resource: a plain 404)."""


def _field(choices: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(choices), _printable, _text)


def _form(fields: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[dict[str, str]]:
    """Some of ``fields`` and some unknown ones."""
    return st.fixed_dictionaries({}, optional={**fields, "extra": _text, "z" * 3: _printable}).map(
        dict
    )


@dataclass
class Body:
    """One generated request body: a form (url-encoded, duplicates allowed) or raw bytes
    with a content type."""

    content: bytes
    content_type: str | None


def _encoded(form: st.SearchStrategy[dict[str, str]]) -> st.SearchStrategy[Body]:
    urlencoded = form.map(
        lambda f: Body(str(httpx.QueryParams(f)).encode(), "application/x-www-form-urlencoded")
    )
    duplicated = form.map(
        lambda f: Body(
            (str(httpx.QueryParams(f)) + "&" + str(httpx.QueryParams(f))).encode(),
            "application/x-www-form-urlencoded",
        )
    )
    raw = st.builds(
        Body,
        _garbage_bytes,
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/json",
                "multipart/form-data; boundary=x",
                "text/plain",
                None,
            ]
        ),
    )
    return st.one_of(urlencoded, urlencoded, duplicated, raw)


# --- the fuzzer -------------------------------------------------------------------------------


@dataclass
class Secrets:
    """Real values the generated forms mix in, so some requests get past the first check."""

    refresh_tokens: list[str]
    access_tokens: list[str]
    client_id: str


class Fuzzer:
    """Drives one bank (`ApiWorld`); every call adds to ``report``."""

    def __init__(self, world: ApiWorld, *, seed_value: int = 0) -> None:
        self.world = world
        self.seed = seed_value
        self.report = FuzzReport()
        self.caller = SignedCaller(world)
        self.tpp_http = world.bank.client(world.tpp_certs)
        self.anonymous = world.bank.client(follow_redirects=False)
        self.registering = RegisteringTpp(world.bank, world.tpp_certs)
        self.secrets = Secrets(
            refresh_tokens=[],
            access_tokens=[self.caller.tokens["aisp"], self.caller.tokens["cbpii"]],
            client_id=world.client_id,
        )
        self._bearer: str | None = None

    def close(self) -> None:
        self.caller.close()
        self.tpp_http.close()
        self.anonymous.close()

    # --- budget -------------------------------------------------------------------------------
    def run(self, requests: int) -> FuzzReport:
        """About ``requests`` requests: half on the STET API (schemathesis), half on forms."""
        targets: list[tuple[str, Callable[[int], None]]] = [
            ("stet", self.stet),
            ("token", self.token),
            ("revoke", self.revoke),
            ("introspect", self.introspect),
            ("authorize", self.authorize),
            ("psu", self.psu_pages),
            ("register", self.register),
        ]
        shares = {"stet": 0.5}
        rest = (1 - shares["stet"]) / (len(targets) - 1)
        rounds = 0
        while self.report.total < requests and rounds < 50:
            missing = requests - self.report.total
            for name, fuzz in targets:
                budget = max(1, int(missing * shares.get(name, rest)))
                fuzz(budget)
            rounds += 1
            self.seed += 1
        return self.report

    def _hypothesis(
        self,
        target: str,
        strategy: st.SearchStrategy[Any],
        examples: int,
        test: Callable[[Any], None],
    ) -> None:
        """Run ``test`` on ``examples`` generated values. A value httpx refuses to put on the
        wire (an illegal header or URL) reached nobody and is skipped; a request the bank
        answered with a dropped or broken connection counts as a server error of ``target``."""

        def guarded(value: Any) -> None:
            try:
                test(value)
            except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
                return
            except httpx.TransportError as exc:
                self.report.no_answer(target, f"{type(exc).__name__}: {exc}")

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(self.seed)
        @given(strategy)
        def drive(value: Any) -> None:
            guarded(value)

        drive()

    # --- STET resource API ----------------------------------------------------------------------
    def stet(self, budget: int) -> None:
        schema = stet_schema()
        operations = [result.ok() for result in schema.get_all_operations()]
        modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
        per = max(1, budget // (len(operations) * len(modes)))
        for operation in operations:
            for mode in modes:
                self._hypothesis(
                    "stet", operation.as_strategy(generation_mode=mode), per, self._stet_case
                )

    def _stet_case(self, case: schemathesis.Case) -> None:
        response = self.caller.send_case(case)
        problems: list[str] = []
        try:
            case.validate_response(response, checks=[*STET_CHECKS, negative_data_rejection])
        except FailureGroup as group:
            problems = [_failure_text(failure) for failure in group.exceptions]
        except Failure as failure:
            problems = [_failure_text(failure)]
        self.report.record(f"stet {case.method} {case.path}", response, problems)

    # --- OAuth endpoints --------------------------------------------------------------------------
    def _token_fields(self) -> dict[str, st.SearchStrategy[str]]:
        secrets = self.secrets
        refresh = st.sampled_from(secrets.refresh_tokens) if secrets.refresh_tokens else _text
        return {
            "grant_type": _field(
                ["authorization_code", "refresh_token", "client_credentials", "password"]
            ),
            "code": _printable,
            "refresh_token": st.one_of(refresh, _printable),
            "client_id": _field([secrets.client_id, "PSDFR-ACPR-00000", "register"]),
            "redirect_uri": _field(["https://tpp.example/cb", "https://evil.example/"]),
            "scope": _field(["aisp", "cbpii", "aisp cbpii", "manageRegistration", "openid"]),
            "code_verifier": _printable,
        }

    def _post(
        self, target: str, path: str, body: Body, check: Callable[[httpx.Response], list[str]]
    ) -> None:
        headers = {} if body.content_type is None else {"Content-Type": body.content_type}
        response = self.tpp_http.post(path, content=body.content, headers=headers)
        self.report.record(target, response, check(response))
        if response.status_code == 200 and path.endswith("/token"):
            issued = _json_object(response) or {}
            if isinstance(issued.get("refresh_token"), str):
                self.secrets.refresh_tokens.append(issued["refresh_token"])

    def token(self, budget: int) -> None:
        self._pairs_to_refresh()
        strategy = _encoded(_form(self._token_fields()))
        self._hypothesis(
            "oauth token",
            strategy,
            budget,
            lambda body: self._post("oauth token", "/stet/psd2/oauth/token", body, token_problems),
        )

    def revoke(self, budget: int) -> None:
        fields = {
            "token": st.one_of(st.sampled_from(self._known_tokens()), _printable),
            "token_type_hint": _field(["access_token", "refresh_token", "id_token"]),
            "client_id": _field([self.secrets.client_id]),
        }
        self._hypothesis(
            "oauth revoke",
            _encoded(_form(fields)),
            budget,
            lambda body: self._post(
                "oauth revoke", "/stet/psd2/oauth/revoke", body, revoke_problems
            ),
        )

    def introspect(self, budget: int) -> None:
        fields = {
            "token": st.one_of(st.sampled_from(self._known_tokens()), _printable),
            "token_type_hint": _field(["access_token", "refresh_token"]),
        }
        self._hypothesis(
            "oauth introspect",
            _encoded(_form(fields)),
            budget,
            lambda body: self._post(
                "oauth introspect", "/stet/psd2/oauth/introspect", body, introspect_problems
            ),
        )

    def _known_tokens(self) -> list[str]:
        return [*self.secrets.access_tokens, *self.secrets.refresh_tokens[-20:]]

    def _pairs_to_refresh(self) -> None:
        """A few real pairs (authorization codes exchanged), so refresh forms can be valid."""
        if len(self.secrets.refresh_tokens) >= 5:
            return
        from tests.support.token_side import exchange_form, new_code

        client = _ClientRef(self.world.client_id)
        for index in range(5):
            code = new_code(
                self.world.engine,
                client,  # type: ignore[arg-type]
                self.world.clock.now(),
                psu_id=f"fuzz-{self.seed}-{index}",
                redirect_uri="https://tpp.example/cb",
            )
            form = exchange_form(client, code, redirect_uri="https://tpp.example/cb")  # type: ignore[arg-type]
            response = self.tpp_http.post("/stet/psd2/oauth/token", data=form)
            self.report.record("oauth token", response, token_problems(response))
            issued = _json_object(response) or {}
            if isinstance(issued.get("refresh_token"), str):
                self.secrets.refresh_tokens.append(issued["refresh_token"])

    # --- PSU side -------------------------------------------------------------------------------
    def authorize(self, budget: int) -> None:
        fields = {
            "response_type": _field(["code", "token", "code id_token"]),
            "client_id": _field([self.secrets.client_id, "unknown"]),
            "redirect_uri": _field(["https://tpp.example/cb", "https://evil.example/cb"]),
            "scope": _field(["aisp", "cbpii", "aisp extended_transaction_history", "openid"]),
            "state": _printable,
            "code_challenge": _printable,
            "code_challenge_method": _field(["S256", "plain"]),
            "lang": _field(["fr", "en", "xx"]),
        }

        def send(query: dict[str, str]) -> None:
            response = self.anonymous.get("/stet/psd2/oauth/authorize", params=query)
            self.report.record("psu authorize", response, page_problems(response))

        self._hypothesis("psu authorize", _form(fields), budget, send)

    def psu_pages(self, budget: int) -> None:
        paths = [
            "/psu/login",
            "/psu/sca/method",
            "/psu/sca",
            "/psu/consent",
            "/psu/cancel",
            "/psu/timeout",
            "/psu/sign-out",
            "/psu/connected-apps/revoke",
        ]
        fields = {
            "psu_id": _field(["jdupont", "alice", ""]),
            "password": _printable,
            "method": _field(["totp", "app", "sms"]),
            "otp": _field(["000000", "123456"]),
            "csrf_token": _printable,
            "accounts": _printable,
            "decision": _field(["accept", "refuse"]),
            "grant_id": _printable,
        }
        strategy = st.tuples(st.sampled_from(paths), st.booleans(), _encoded(_form(fields)))

        def send(value: tuple[str, bool, Body]) -> None:
            path, in_journey, body = value
            with httpx.Client(
                base_url=self.world.bank.base_url,
                verify=self.world.bank.pki.client_ssl_context(None, None),
                follow_redirects=False,
                timeout=10,
            ) as browser:
                content = body.content
                if in_journey:  # a real journey's session cookie and CSRF token
                    started = browser.get(
                        "/stet/psd2/oauth/authorize",
                        params={
                            "response_type": "code",
                            "client_id": self.secrets.client_id,
                            "redirect_uri": "https://tpp.example/cb",
                            "scope": "aisp",
                            "state": "fuzz",
                        },
                    )
                    self.report.record("psu authorize", started, page_problems(started))
                    login = browser.get("/psu/login")
                    self.report.record("psu page GET", login, page_problems(login))
                    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
                    if token and body.content_type == "application/x-www-form-urlencoded":
                        content += b"&csrf_token=" + token.group(1).encode()
                headers = {} if body.content_type is None else {"Content-Type": body.content_type}
                response = browser.post(path, content=content, headers=headers)
                self.report.record(f"psu POST {path}", response, page_problems(response))

        self._hypothesis("psu POST", strategy, max(1, budget // 2), send)

    # --- register API ---------------------------------------------------------------------------
    def register(self, budget: int) -> None:
        json_values = st.recursive(
            st.none() | st.booleans() | st.integers() | _text,
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(_printable, inner, max_size=4)
            ),
            max_leaves=12,
        )
        metadata = st.fixed_dictionaries(
            {},
            optional={
                "redirect_uris": st.one_of(
                    st.just(["https://tpp.example/cb"]), st.lists(_text, max_size=3), json_values
                ),
                "client_name": st.one_of(_text, json_values),
                "grant_types": st.one_of(
                    st.just(["authorization_code", "refresh_token"]), json_values
                ),
                "response_types": st.one_of(st.just(["code"]), json_values),
                "token_endpoint_auth_method": _field(["tls_client_auth", "none"]),
                "scope": _field(["aisp cbpii", "aisp"]),
                "contacts": st.one_of(st.lists(_printable, max_size=2), json_values),
                "jwks": json_values,
                "software_statement": _printable,
                "extra": json_values,
            },
        )
        strategy = st.tuples(
            st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE"]),
            st.one_of(metadata.map(lambda d: json.dumps(d).encode()), _garbage_bytes),
            st.one_of(st.none(), st.just("fuzz-request-id"), _printable),
            st.sampled_from(["real", "none", "garbage"]),
            _path_segment,
        )

        def send(value: tuple[str, bytes, str | None, str, str]) -> None:
            method, body, request_id, bearer_kind, client_id = value
            bearer = {
                "real": self._registration_bearer(),
                "none": None,
                "garbage": "x" * 20,
            }[bearer_kind]
            target = REGISTER_PATH if method == "POST" else f"{REGISTER_PATH}/{client_id or 'x'}"
            response = self.registering.send(
                method,
                httpx.URL(target).raw_path.decode("ascii"),
                bearer=bearer,
                body=body,
                request_id=request_id,
            )
            self.report.record(
                f"register {method}", response, register_problems(response, request_id)
            )

        self._hypothesis("register", strategy, budget, send)

    def _registration_bearer(self) -> str | None:
        if self._bearer is None:
            answer = self.registering.registration_token()
            self.report.record("oauth token", answer, token_problems(answer))
            if answer.status_code == 200:
                self._bearer = answer.json()["access_token"]
        return self._bearer


def _failure_text(failure: Failure) -> str:
    detail = " ".join(failure.message.split())[:300]
    return f"{failure.title} ({detail})" if detail else failure.title


@dataclass(frozen=True)
class _ClientRef:
    """What `tests.support.token_side.new_code` / `exchange_form` read of a client."""

    client_id: str

    @property
    def org_id(self) -> str:
        return self.client_id


def fuzz_world(world: ApiWorld, requests: int, seed_value: int = 0) -> FuzzReport:
    fuzzer = Fuzzer(world, seed_value=seed_value)
    try:
        return fuzzer.run(requests)
    finally:
        fuzzer.close()
