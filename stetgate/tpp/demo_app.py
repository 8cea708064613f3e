"""The sandbox's demo TPP: a tiny AISP/CBPII web app built on `StetBankClient`.

It shows a developer the whole cinematic from the TPP's side — redirect to the bank, the
callback in every outcome (code, refusal, timeout…), the token exchange over mTLS, refresh,
revocation, and signed AISP/CBPII calls. State is per browser session, in memory (a demo).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from stetgate.tpp.client import (
    AuthorizationRequest,
    BankError,
    StetBankClient,
    TokenSet,
    TppCredentials,
)

COOKIE = "demo_tpp_session"


@dataclass(frozen=True)
class DemoTppConfig:
    bank_url: str
    client_id: str
    credentials: TppCredentials
    public_url: str
    ca_file: Path | None = None
    name: str = "Demo TPP"


@dataclass
class _Session:
    pending: AuthorizationRequest | None = None
    tokens: dict[str, TokenSet] = field(default_factory=dict)
    last_error: str | None = None


class DemoTpp:
    def __init__(self, config: DemoTppConfig) -> None:
        self.config = config
        self.sessions: dict[str, _Session] = {}
        self.templates = Environment(
            loader=PackageLoader("stetgate.tpp", "templates"),
            autoescape=select_autoescape(["html"]),
        )

    def bank(self) -> StetBankClient:
        c = self.config
        return StetBankClient(c.bank_url, c.credentials, c.client_id, ca_file=c.ca_file)

    def session(self, request: Request) -> tuple[str, _Session]:
        sid = request.cookies.get(COOKIE)
        if sid is None or sid not in self.sessions:
            sid = secrets.token_urlsafe(32)
            self.sessions[sid] = _Session()
        return sid, self.sessions[sid]

    def render(self, sid: str, template: str, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(name=self.config.name, **context)
        response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        response.set_cookie(COOKIE, sid, httponly=True, secure=True, samesite="lax")
        return response


def create_demo_tpp_app(config: DemoTppConfig) -> Starlette:
    demo = DemoTpp(config)
    redirect_uri = f"{config.public_url.rstrip('/')}/callback"

    async def index(request: Request) -> Response:
        sid, session = demo.session(request)
        error, session.last_error = session.last_error, None
        return demo.render(sid, "index.html", tokens=session.tokens, error=error)

    async def connect(request: Request) -> Response:
        sid, session = demo.session(request)
        scope = "cbpii" if request.query_params.get("scope") == "cbpii" else "aisp"
        with demo.bank() as bank:
            session.pending = bank.authorization_request(scope, redirect_uri)
        response = RedirectResponse(session.pending.url, status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, secure=True, samesite="lax")
        return response

    async def callback(request: Request) -> Response:
        sid, session = demo.session(request)
        pending = session.pending
        if pending is None or request.query_params.get("state") != pending.state:
            # Not this browser session's authorization: most likely one started from a
            # terminal with `stetgate tpp authorize-url` and this app's redirect URI. Say how
            # to finish it there instead of dropping it (the code lives 60 s).
            message = (
                "this callback is not for an authorization started on this page. If you "
                "started it with `stetgate tpp authorize-url`, finish it within 60 s with: "
                f"stetgate tpp exchange '{request.url}'"
            )
            return demo.render(sid, "index.html", tokens=session.tokens, error=message)
        session.pending = None

        def exchange() -> TokenSet:
            with demo.bank() as bank:
                return bank.exchange_code(
                    pending, str(request.url), expected_issuer=config.bank_url.rstrip("/")
                )

        try:
            session.tokens[pending.scope] = await run_in_threadpool(exchange)
        except BankError as exc:
            session.last_error = f"the bank's answer: {exc}"
            return RedirectResponse("/", status_code=303)
        return RedirectResponse("/data" if pending.scope == "aisp" else "/", status_code=303)

    async def data(request: Request) -> Response:
        sid, session = demo.session(request)
        tokens = session.tokens.get("aisp")
        if tokens is None:
            return RedirectResponse("/", status_code=303)
        psu = {"PSU-IP-Address": request.client.host if request.client else "127.0.0.1"}

        def load() -> dict[str, Any]:
            with demo.bank() as bank:
                bank.forward_consent(
                    tokens,
                    all_accounts=True,
                    psu_identity=True,
                    trusted_beneficiaries=True,
                    psu_headers=psu,
                )
                listing = bank.api("GET", "accounts", tokens, psu_headers=psu)
                history: dict[str, Any] = {}
                for account in listing.get("accounts", []):
                    rid = account.get("resourceId")
                    if rid and account.get("_links", {}).get("transactions"):
                        page = bank.api(
                            "GET", f"accounts/{rid}/transactions", tokens, psu_headers=psu
                        )
                        history[rid] = page.get("transactions", [])[:10]
                identity = bank.api("GET", "end-user-identity", tokens, psu_headers=psu)
                return {
                    "accounts": listing.get("accounts", []),
                    "history": history,
                    "identity": identity.get("connectedPsu"),
                }

        try:
            loaded = await run_in_threadpool(load)
        except BankError as exc:
            session.last_error = f"the bank's answer: {exc}"
            return RedirectResponse("/", status_code=303)
        return demo.render(sid, "data.html", **loaded)

    async def refresh(request: Request) -> Response:
        _sid, session = demo.session(request)
        scope = (await request.form()).get("scope", "aisp")
        tokens = session.tokens.get(str(scope))
        if tokens is not None:

            def run() -> TokenSet:
                with demo.bank() as bank:
                    return bank.refresh(tokens)

            try:
                session.tokens[str(scope)] = await run_in_threadpool(run)
            except BankError as exc:
                session.last_error = f"refresh refused: {exc}"
                session.tokens.pop(str(scope), None)
        return RedirectResponse("/", status_code=303)

    async def revoke(request: Request) -> Response:
        _sid, session = demo.session(request)
        scope = str((await request.form()).get("scope", "aisp"))
        tokens = session.tokens.pop(scope, None)
        if tokens is not None:

            def run() -> None:
                with demo.bank() as bank:
                    bank.revoke(tokens.refresh_token or tokens.access_token)

            try:
                await run_in_threadpool(run)
            except BankError as exc:
                session.last_error = f"revocation failed: {exc}"
        return RedirectResponse("/", status_code=303)

    async def funds(request: Request) -> Response:
        _sid, session = demo.session(request)
        tokens = session.tokens.get("cbpii")
        form = await request.form()
        if tokens is None:
            return RedirectResponse("/", status_code=303)
        amount = str(form.get("amount", "10.00"))
        body = {
            "paymentCoverageRequestId": secrets.token_hex(8),
            "instructedAmount": {"currency": "EUR", "amount": amount},
            "accountId": {"iban": str(form.get("iban", "")).replace(" ", "")},
        }

        def run() -> dict[str, Any]:
            with demo.bank() as bank:
                return bank.api("POST", "funds-confirmations", tokens, json_body=body)

        try:
            result = await run_in_threadpool(run)
        except BankError as exc:
            session.last_error = f"funds confirmation refused: {exc}"
            return RedirectResponse("/", status_code=303)
        answer = "yes" if result.get("result") else "no"
        session.last_error = f"funds available for {amount} EUR: {answer}"
        return RedirectResponse("/", status_code=303)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/connect", connect),
            Route("/callback", callback),
            Route("/data", data),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/funds", funds, methods=["POST"]),
        ]
    )
