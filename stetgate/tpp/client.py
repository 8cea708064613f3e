"""TPP-side client for any STET v1.4.2 bank: the "get your token" cinematic and the AISP/CBPII API.

What a TPP developer needs, shaped by the bank's `BankProfile` (steps of
docs/decisions.md#the-cinematic):
- step 2: build the ``GET /authorize`` URL (with ``state`` and PKCE where the bank supports it);
- step 5: exchange the code at ``POST /token`` over mutual TLS with the QWAC (RFC 8705 §2);
- keep tokens alive: refresh before expiry (RFC 6749 §6), store what the bank returns (banks
  disagree on refresh-token rotation, docs/decisions.md#refresh), and know when a new SCA is
  needed;
- step 8: call the resource API with ``Authorization: Bearer``, ``X-Request-ID``, ``Digest`` and a
  draft-cavage ``Signature`` made with the QSealC (docs/decisions.md#http-signatures).

The operations themselves are `stetgate.tpp.flows` (no I/O); `StetBankClient` sends them with
``httpx.Client``, `stetgate.tpp.async_client.AsyncStetBankClient` with ``httpx.AsyncClient``.
This module also keeps tokens on disk (`TokenFile`).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack, cast

import httpx

from stetgate.clock import Clock, SystemClock
from stetgate.tpp import flows
from stetgate.tpp.bank_profile import BankProfile, default_profile
from stetgate.tpp.credentials import TppCredentials
from stetgate.tpp.errors import BankError, ProfileGap
from stetgate.tpp.flows import (
    ApiOptions,
    ConsentChoices,
    Flow,
    MetadataOptions,
    Outgoing,
    SignedOptions,
    TppAtBank,
)
from stetgate.tpp.registration import Registration
from stetgate.tpp.tokens import AuthorizationRequest, TokenSet, pkce_pair

T = TypeVar("T")

__all__ = [
    "AuthorizationRequest",
    "BankError",
    "BankProfile",
    "ClientCore",
    "ProfileGap",
    "Registration",
    "StetBankClient",
    "TokenFile",
    "TokenSet",
    "TppCredentials",
    "default_state_dir",
    "pkce_pair",
    "write_private_bytes",
    "write_private_json",
]


class ClientOptions(TypedDict, total=False):
    """Keyword options of both clients' constructors."""

    ca_file: Path | None
    """CA file to trust for the bank's TLS certificate; default: the system store."""
    timeout: float
    """Seconds per request (httpx's timeout), 15 by default."""
    clock: Clock | None
    """Dates signatures and tokens' ``obtained_at``; default: the system clock."""
    profile: BankProfile | None
    """The bank's profile; default: ``sandbox`` (stetgate's own behaviour)."""


class ClientCore:
    """What the sync and async clients share: one TPP (one ``client_id``; ``""`` before
    registering) at one bank, described by ``profile`` (default: the ``sandbox`` profile,
    stetgate's own behaviour), and the operations that need no I/O."""

    def __init__(
        self,
        base_url: str,
        credentials: TppCredentials,
        client_id: str = "",
        **options: Unpack[ClientOptions],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        profile, clock = options.get("profile"), options.get("clock")
        self.profile = profile or default_profile()
        self.clock: Clock = clock or SystemClock()  # signed Date headers, tokens' obtained_at
        self.credentials = credentials
        self.client_id = client_id
        self._signing_key = credentials.signing_key()
        self._key_id = flows.choose_key_id(self.profile, credentials)
        self._verify = credentials.mtls_context(options.get("ca_file"))
        self._timeout = options.get("timeout", 15.0)

    def at_bank(self) -> TppAtBank:
        """This client's identity and bank, as the flows take them."""
        return TppAtBank(
            self.base_url,
            self.client_id,
            self.profile,
            self.credentials,
            self._signing_key,
            self._key_id,
            self.clock,
        )

    def authorization_request(
        self,
        scope: str,
        redirect_uri: str,
        *,
        use_pkce: bool | None = None,
        state: str | None = None,
    ) -> AuthorizationRequest:
        """Step 2 of the cinematic (`flows.authorization_request`): PKCE follows the profile
        unless ``use_pkce`` says otherwise."""
        return flows.authorization_request(
            self.at_bank(), scope, redirect_uri, use_pkce=use_pkce, state=state
        )

    def client_metadata(
        self, client_name: str, redirect_uris: Sequence[str], **options: Unpack[MetadataOptions]
    ) -> dict[str, Any]:
        """The RFC 7591 body for `register` (`flows.client_metadata`)."""
        return flows.client_metadata(self.at_bank(), client_name, redirect_uris, **options)


class StetBankClient(ClientCore):
    """`ClientCore` over ``httpx.Client`` (mutual TLS with the QWAC)."""

    def __init__(
        self,
        base_url: str,
        credentials: TppCredentials,
        client_id: str = "",
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, credentials, client_id, **options)
        self._http = httpx.Client(verify=self._verify, timeout=self._timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StetBankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, flow: Flow[T]) -> T:
        """Send each request the flow yields; its return value is the result."""
        try:
            outgoing = next(flow)
            while True:
                outgoing = flow.send(self._send(outgoing))
        except StopIteration as done:
            return cast(T, done.value)

    def _send(self, outgoing: Outgoing) -> httpx.Response:
        return self._http.request(**outgoing.as_httpx())

    # --- OAuth ---------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return self._run(flows.metadata(self.at_bank()))

    def exchange_code(
        self,
        request: AuthorizationRequest,
        callback_url: str,
        *,
        expected_issuer: str | None = None,
    ) -> TokenSet:
        """Steps 4-7: check the callback (state, iss, error) and redeem the code."""
        flow = flows.exchange_code(
            self.at_bank(), request, callback_url, expected_issuer=expected_issuer
        )
        return self._run(flow)

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """RFC 6749 §6; `invalid_grant` means a new SCA is needed."""
        return self._run(flows.refresh(self.at_bank(), tokens))

    def ensure_fresh(self, tokens: TokenSet, margin_seconds: int = 60) -> TokenSet:
        """``tokens``, or refreshed ones when fewer than ``margin_seconds`` are left (store
        what this returns: the bank may have rotated the refresh token)."""
        return self._run(flows.ensure_fresh(self.at_bank(), tokens, margin_seconds))

    def revoke(self, token: str, hint: str | None = None) -> None:
        """RFC 7009; the bank revokes the whole pair."""
        self._run(flows.revoke(self.at_bank(), token, hint))

    # --- resource API (signed) -----------------------------------------------------------------
    def signed_request(
        self, method: str, path: str, token: str | None, **options: Unpack[SignedOptions]
    ) -> httpx.Response:
        """A request signed with the QSealC (`flows.signed`); the raw response."""
        return self._run(flows.signed_request(self.at_bank(), method, path, token, **options))

    def api(
        self, method: str, path: str, tokens: TokenSet, **options: Unpack[ApiOptions]
    ) -> dict[str, Any]:
        """A signed call with ``tokens``' access token; the JSON answer, ``{}`` for 201/204
        without a body; `BankError` from 400 on."""
        return self._run(flows.api(self.at_bank(), method, path, tokens, **options))

    def forward_consent(
        self, tokens: TokenSet, **choices: Unpack[ConsentChoices]
    ) -> dict[str, Any]:
        """STET ``PUT /consents`` (`flows.forward_consent`); returns the body sent."""
        return self._run(flows.forward_consent(self.at_bank(), tokens, **choices))

    def follow(
        self, href: str, tokens: TokenSet, **options: Unpack[SignedOptions]
    ) -> dict[str, Any]:
        """GET a HAL ``_links`` href, its query sent as the bank wrote it."""
        return self._run(flows.follow(self.at_bank(), href, tokens, **options))

    # --- register API (RFC 7591/7592, docs/register-api.md) ------------------------------------
    def registration_token(self) -> str:
        return self._run(flows.registration_token(self.at_bank()))

    def register(self, metadata: Mapping[str, Any]) -> Registration:
        """``POST /register`` with `client_metadata`'s body."""
        return self._run(flows.register(self.at_bank(), metadata))

    def read_registration(self, registration: Registration) -> Registration:
        return self._run(flows.read_registration(self.at_bank(), registration))

    def update_registration(
        self, registration: Registration, metadata: Mapping[str, Any]
    ) -> Registration:
        """A full replacement; for a certificate rotation, build the client with the new ones."""
        return self._run(flows.update_registration(self.at_bank(), registration, metadata))

    def delete_registration(self, registration: Registration) -> None:
        self._run(flows.delete_registration(self.at_bank(), registration))


def default_state_dir() -> Path:
    """Where the TPP kit keeps tokens, pending authorizations and registrations:
    ``$STETGATE_TPP_HOME``, else ``$XDG_STATE_HOME/stetgate-tpp``, else
    ``~/.local/state/stetgate-tpp`` (XDG Base Directory) — never the working directory, where
    a token file ends up committed or shared."""
    explicit = os.environ.get("STETGATE_TPP_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "stetgate-tpp"


class TokenFile:
    """Tokens kept on disk, one entry per key (the CLI uses ``"<bank> <client_id> <scope>"``).

    The file is JSON, mode 0600 in a 0700 folder, replaced atomically on every write; it holds
    live refresh tokens (90 days of access to a PSU's accounts): keep it out of backups and
    repositories. ``get`` → `TokenSet` or None, ``put``, ``delete``, ``stored_keys``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = threading.local()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the file across processes (``flock`` on ``<file>.lock``), for a
        read-modify-write: two CLI runs refreshing at once against a bank that rotates refresh
        tokens would otherwise both spend the old one, and the bank revokes the pair (RFC 9700
        §4.14.2). Re-entrant within a thread (``put`` inside a locked refresh)."""
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def stored_keys(self) -> list[str]:
        return list(self._load())

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def get(self, key: str) -> TokenSet | None:
        entry = self._load().get(key)
        return TokenSet.from_json(entry) if entry else None

    def put(self, key: str, tokens: TokenSet) -> None:
        with self.locked():
            data = self._load()
            data[key] = tokens.to_json()
            self._write(data)

    def delete(self, key: str) -> None:
        with self.locked():
            data = self._load()
            if data.pop(key, None) is not None:
                self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        write_private_json(self.path, data)


def write_private_json(path: Path, data: Any) -> None:
    """`write_private_bytes` of ``data`` as indented JSON."""
    write_private_bytes(path, json.dumps(data, indent=2).encode())


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600 file, 0700 new folder),
    atomically (a temporary file renamed over it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A temporary name of its own per writer: two writers sharing one would interleave.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
