"""The wire under `HttpBank`: one HTTP/1.1 request, one answer, failures already classified.

`HttpBank` decides *what* to send, when to retry and how to read the answer; a `BankTransport`
only moves bytes. `PooledTransport` is the one stetgate ships: per origin, a bounded pool of
keep-alive connections (RFC 9112 §9.3) shared by the blocking-pool threads that call the bank
ports, each connection used by one thread at a time.

**Why not httpx or urllib3 here** (docs/bank-integration.md#the-http-client). The ports run on
threads, so the client is synchronous either way, and on this path the client's own CPU is
the gateway's CPU per API call. Measured on the 2-core reference box, one keep-alive GET with a
3 KB JSON answer costs ~460 µs of CPU with ``httpx.Client``, ~200–240 µs with urllib3 (most of
it in ``http.client``'s e-mail-style header parsing) and ~20 µs with this module, which hands
the parsing of the answer — status line, headers, chunked or sized body — to ``httptools``
(llhttp, the parser uvicorn runs for stetgate's own server side). What is written here is only
the framing of our own requests and the pool.

What a call gets:

- a connection slot within the call's time budget (`BankTimeout` "no free connection");
- an idle connection of the origin, newest first (LIFO keeps the pool warm), unless it has
  been idle longer than ``idle_seconds`` (below the usual server keep-alive timeouts, e.g.
  uvicorn's 5 s) or the server already closed or wrote on it (a zero-timeout readability
  check) — else a new connection (TCP_NODELAY; TLS with the configured context and SNI);
- one deadline for connect, send and every read;
- a GET that fails on a *reused* connection before any byte of the answer arrived (the server
  closed it while idle) is sent once more on a new connection; nothing else is re-sent here
  (retries are `HttpBank`'s decision);
- the answer is complete or it is a failure: a body cut short, a framing error, more than
  `MAX_ANSWER_BYTES`. A connection goes back to the pool only after a complete answer that
  allows keep-alive.

Failures are `BankTimeout` (connect or read deadline, no free connection), `BankUnavailable`
(refused, reset, closed early, malformed, too large) and `TlsFailure` (handshake or
verification) — the one kind `HttpBank` never retries. Reasons are short and never quote the
target (it holds the PSU id) or the answer.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httptools

from stetgate.bank.failures import BankTimeout, BankUnavailable

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""A bigger answer is a failure, not a memory problem (a 500-entry transaction page is
~0.5 MB)."""

IDLE_SECONDS = 4.0
"""How long an idle connection is kept: under the 5 s keep-alive timeout of uvicorn's default
(nginx: 75 s), so we normally close first."""

_READ_SIZE = 65536
_TARGET = re.compile(r"[!-~]+")  # RFC 9112 §3.2: no whitespace, no control characters
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # RFC 9110 §5.5: no CR, LF or NUL


class TlsFailure(BankUnavailable):
    """The TLS handshake or the backend's certificate failed: it will not heal in
    milliseconds, so it is not retried."""


@dataclass(frozen=True, slots=True)
class BankRequest:
    """One request: ``target`` is a path and query under the base URL, or an absolute URL
    (the client-credentials token endpoint may live elsewhere)."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class BankAnswer:
    """The status, the media type (lower case, without parameters) and the whole body."""

    status: int
    media_type: str
    content: bytes


class BankTransport(Protocol):
    """Sends one request within ``timeout`` seconds (waiting for a connection included)."""

    def send(self, request: BankRequest, timeout: float) -> BankAnswer: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> _Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an absolute http(s) URL is needed")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in the URL are not supported")
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, parts.port or default)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


class _StaleConnection(Exception):
    """A reused connection failed before any byte of the answer: the server had closed it."""


@dataclass(slots=True)
class _Answer:
    """httptools callbacks (llhttp): collects the status, content type and body."""

    limit: int
    parser: httptools.HttpResponseParser | None = None
    media_type: str = ""
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    keep_alive: bool = False
    complete: bool = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.media_type = value.decode("latin-1").split(";", 1)[0].strip().lower()

    def on_headers_complete(self) -> None:
        # llhttp answers "keep-alive?" for the message being parsed; once it is complete the
        # parser has moved on and says no, so ask now.
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise _TooLarge  # httptools re-raises it as an HttpParserCallbackError
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True


class _TooLarge(Exception):
    pass


class _Connection:
    __slots__ = ("idle_since", "sock")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.idle_since = now

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def still_usable(self) -> bool:
        """An idle connection must have nothing to read: readable means the server closed
        it (EOF) or wrote out of turn."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


class _OriginPool:
    """The connections of one origin: at most ``size`` in use or idle."""

    def __init__(
        self,
        origin: _Origin,
        size: int,
        tls: ssl.SSLContext | None,
        idle_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.origin = origin
        self.tls = tls
        self.idle_seconds = idle_seconds
        self._monotonic = monotonic
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._closed = False

    def send(self, request: BankRequest, head: bytes, deadline: float) -> BankAnswer:
        if not self._slots.acquire(timeout=max(deadline - self._monotonic(), 0.0)):
            raise BankTimeout("no free connection")
        try:
            connection = self._idle_connection()
            if connection is not None:
                try:
                    return self._exchange(connection, request, head, deadline, reused=True)
                except _StaleConnection:
                    if request.method != "GET":
                        raise BankUnavailable("connection closed by the server") from None
            return self._exchange(self._connect(deadline), request, head, deadline, reused=False)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _idle_connection(self) -> _Connection | None:
        now = self._monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if now - connection.idle_since < self.idle_seconds and connection.still_usable():
                return connection
            connection.close()

    def _connect(self, deadline: float) -> _Connection:
        origin = self.origin
        try:
            sock = socket.create_connection(
                (origin.host, origin.port), timeout=_remaining(deadline, self._monotonic)
            )
        except TimeoutError:
            raise BankTimeout("connect timed out") from None
        except ConnectionRefusedError:
            raise BankUnavailable("connection refused") from None
        except OSError:
            raise BankUnavailable("connection failed") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock.settimeout(_remaining(deadline, self._monotonic))
                sock = self.tls.wrap_socket(sock, server_hostname=origin.host)
        except TimeoutError:
            sock.close()
            raise BankTimeout("TLS handshake timed out") from None
        except (ssl.SSLError, ssl.CertificateError):
            sock.close()
            raise TlsFailure("TLS failure") from None
        except OSError:
            sock.close()
            raise BankUnavailable("connection failed") from None
        return _Connection(sock, self._monotonic())

    def _exchange(
        self,
        connection: _Connection,
        request: BankRequest,
        head: bytes,
        deadline: float,
        *,
        reused: bool,
    ) -> BankAnswer:
        sock = connection.sock
        answer = _Answer(MAX_ANSWER_BYTES)
        parser = answer.parser = httptools.HttpResponseParser(answer)
        received = False
        keep = False
        try:
            sock.settimeout(_remaining(deadline, self._monotonic))
            sock.sendall(head + request.body if request.body else head)
            while not answer.complete:
                sock.settimeout(_remaining(deadline, self._monotonic))
                data = sock.recv(_READ_SIZE)
                if not data:
                    if reused and not received:
                        raise _StaleConnection
                    raise BankUnavailable("connection closed before the end of the answer")
                received = True
                parser.feed_data(data)
            keep = answer.keep_alive
            status = parser.get_status_code()
        except (_TooLarge, httptools.HttpParserError):
            if answer.size > answer.limit:
                raise BankUnavailable("answer too large") from None
            raise BankUnavailable("malformed HTTP answer") from None
        except TimeoutError:
            raise BankTimeout("timed out") from None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
            if reused and not received:
                raise _StaleConnection from None
            raise BankUnavailable("connection failed") from None
        except ssl.SSLError:
            raise TlsFailure("TLS failure") from None
        except OSError:
            raise BankUnavailable("connection failed") from None
        finally:
            if not keep:
                connection.close()
        if not keep:
            return BankAnswer(status, answer.media_type, b"".join(answer.chunks))
        connection.idle_since = self._monotonic()
        with self._lock:
            if self._closed:
                connection.close()
            else:
                self._idle.append(connection)
        return BankAnswer(status, answer.media_type, b"".join(answer.chunks))


class PooledTransport:
    """`BankTransport` over keep-alive HTTP/1.1 connection pools: one of ``max_connections``
    for ``base_url``, small ones for the absolute URLs of other origins (the token endpoint),
    all with the same TLS context."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        user_agent: str = "stetgate",
        idle_seconds: float = IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        origin = _Origin.of(base_url)
        self.prefix = urlsplit(base_url).path.rstrip("/")
        self.user_agent = user_agent
        self._tls = tls or ssl.create_default_context()
        self._idle_seconds = idle_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._base = self._pool(origin, max_connections)
        self._others: dict[_Origin, _OriginPool] = {}

    def send(self, request: BankRequest, timeout: float) -> BankAnswer:
        deadline = self._monotonic() + timeout
        if "://" in request.target:
            parts = urlsplit(request.target)
            origin = _Origin.of(request.target)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            pool = self._other(origin)
        else:
            pool, target = self._base, self.prefix + request.target
        return pool.send(request, _head(request, target, pool.origin, self.user_agent), deadline)

    def close(self) -> None:
        with self._lock:
            pools = [self._base, *self._others.values()]
        for pool in pools:
            pool.close()

    def _pool(self, origin: _Origin, size: int) -> _OriginPool:
        tls = self._tls if origin.scheme == "https" else None
        return _OriginPool(origin, size, tls, self._idle_seconds, self._monotonic)

    def _other(self, origin: _Origin) -> _OriginPool:
        if origin == self._base.origin:
            return self._base
        with self._lock:
            pool = self._others.get(origin)
            if pool is None:
                pool = self._others[origin] = self._pool(origin, 2)
            return pool


def _head(request: BankRequest, target: str, origin: _Origin, user_agent: str) -> bytes:
    """The request line and header section (RFC 9112 §3, §5), refusing anything that could
    split it: the forwarded X-Request-ID comes from the TPP."""
    if not _TOKEN.fullmatch(request.method) or not _TARGET.fullmatch(target):
        raise BankUnavailable("invalid request")
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    lines.append(f"User-Agent: {user_agent}")
    for name, value in request.headers.items():
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise BankUnavailable("invalid request header")
        lines.append(f"{name}: {value}")
    if request.body is not None or request.method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(request.body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _remaining(deadline: float, monotonic: Callable[[], float]) -> float:
    left = deadline - monotonic()
    if left <= 0:
        raise TimeoutError
    return left


__all__ = [
    "IDLE_SECONDS",
    "MAX_ANSWER_BYTES",
    "BankAnswer",
    "BankRequest",
    "BankTransport",
    "PooledTransport",
    "TlsFailure",
]
