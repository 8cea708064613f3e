"""`PooledTransport` over real sockets on 127.0.0.1: keep-alive reuse, the pool's bound, stale
connections, framing (sized, chunked, cut short, malformed, too large), deadlines, TLS, and
request-splitting refusals. The server is a scripted TCP listener: each test says, request by
request, which bytes go back (or that the connection closes or hangs)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from stetgate.bank.failures import BankTimeout, BankUnavailable
from stetgate.bank_http import transport as transport_module
from stetgate.bank_http.transport import BankRequest, PooledTransport, TlsFailure
from tests.support.pki import TestPki


class Close(bytes):
    """Send these bytes, then close the connection."""


Reply = bytes | None  # None: close the connection without answering; Close: answer, close
Script = Callable[[int, bytes], Reply]


def ok(body: bytes = b'{"ok":true}', *, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class Scripted:
    """A TCP server answering each request with ``script(connection_number, request)``."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released once per connection the server closed
        self.requests: list[bytes] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            number = self.connections
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                request, buffer = head + b"\r\n\r\n" + buffer[:length], buffer[length:]
                self.requests.append(request)
                reply = self.script(number, request)
                if reply is None:
                    return
                sock.sendall(reply)
                if isinstance(reply, Close):
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            sock.close()
            self.closed.release()

    def close(self) -> None:
        self._stop = True
        self.listener.close()


@contextmanager
def scripted(script: Script, tls: ssl.SSLContext | None = None) -> Iterator[Scripted]:
    server = Scripted(script, tls)
    try:
        yield server
    finally:
        server.close()


def get(path: str = "/x", **headers: str) -> BankRequest:
    return BankRequest("GET", path, {"Accept": "application/json", **headers})


def test_keep_alive_connections_are_reused() -> None:
    with scripted(lambda n, r: ok()) as server:
        transport = PooledTransport(server.url, max_connections=4)
        answers = [transport.send(get(), 2.0) for _ in range(5)]
        transport.close()
    assert [a.status for a in answers] == [200] * 5
    assert answers[0].media_type == "application/json" and answers[0].content == b'{"ok":true}'
    assert server.connections == 1


def test_the_request_line_host_and_headers_are_sent_under_the_base_path() -> None:
    with scripted(lambda n, r: ok()) as server:
        transport = PooledTransport(server.url + "/core/", max_connections=1)
        transport.send(get("/v1/psus/p%201?a=1", **{"X-Request-ID": "r-1"}), 2.0)
        transport.close()
    head = server.requests[0].decode()
    assert head.startswith("GET /core/v1/psus/p%201?a=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in head and "X-Request-ID: r-1\r\n" in head


def test_a_post_carries_its_body_and_length() -> None:
    with scripted(lambda n, r: ok()) as server:
        transport = PooledTransport(server.url, max_connections=1)
        transport.send(BankRequest("POST", "/f", {"Content-Type": "a/b"}, b'{"a":1}'), 2.0)
        transport.close()
    assert server.requests[0].endswith(b'Content-Length: 7\r\n\r\n{"a":1}')


def test_connection_close_is_honoured() -> None:
    with scripted(lambda n, r: ok(extra=b"Connection: close\r\n")) as server:
        transport = PooledTransport(server.url, max_connections=2)
        for _ in range(3):
            assert transport.send(get(), 2.0).status == 200
        transport.close()
    assert server.connections == 3


def test_a_chunked_answer_is_reassembled() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"a"\r\n4\r\n:12}\r\n0\r\n\r\n'
    )
    with scripted(lambda n, r: chunked) as server:
        transport = PooledTransport(server.url, max_connections=1)
        assert transport.send(get(), 2.0).content == b'{"a":12}'
        assert transport.send(get(), 2.0).content == b'{"a":12}'
        transport.close()
    assert server.connections == 1


def test_an_idle_connection_the_server_closed_is_not_used() -> None:
    with scripted(lambda n, r: Close(ok()) if n == 1 else ok()) as server:
        transport = PooledTransport(server.url, max_connections=1)
        assert transport.send(get(), 2.0).status == 200
        assert server.closed.acquire(timeout=5)  # the server's FIN is on its way
        time.sleep(0.05)  # and has arrived: the idle connection reads as closed
        assert transport.send(BankRequest("POST", "/f", {}, b"{}"), 2.0).status == 200
        transport.close()
    assert server.connections == 2 and len(server.requests) == 2


def first_answer_then_silent_close(number: int, request: bytes) -> Reply:
    """Connection 1 answers its first request, then closes on the next one unanswered (the
    race with a server's keep-alive timeout); later connections answer."""
    if number == 1:
        first_answer_then_silent_close.seen += 1  # type: ignore[attr-defined]
        return ok() if first_answer_then_silent_close.seen == 1 else None  # type: ignore[attr-defined]
    return ok()


def test_a_get_that_meets_a_just_closed_connection_is_sent_again_on_a_new_one() -> None:
    first_answer_then_silent_close.seen = 0  # type: ignore[attr-defined]
    with scripted(first_answer_then_silent_close) as server:
        transport = PooledTransport(server.url, max_connections=1)
        assert transport.send(get(), 2.0).status == 200
        assert transport.send(get(), 2.0).status == 200
        transport.close()
    assert server.connections == 2 and len(server.requests) == 3


def test_a_post_that_meets_a_just_closed_connection_is_not_sent_again() -> None:
    first_answer_then_silent_close.seen = 0  # type: ignore[attr-defined]
    with scripted(first_answer_then_silent_close) as server:
        transport = PooledTransport(server.url, max_connections=1)
        transport.send(get(), 2.0)
        with pytest.raises(BankUnavailable, match="closed by the server"):
            transport.send(BankRequest("POST", "/f", {}, b"{}"), 2.0)
        transport.close()
    assert [r.split(b" ")[0] for r in server.requests] == [b"GET", b"POST"]


def test_an_idle_connection_past_its_time_is_not_reused() -> None:
    clock = [100.0]
    with scripted(lambda n, r: ok()) as server:
        transport = PooledTransport(
            server.url, max_connections=1, idle_seconds=4.0, monotonic=lambda: clock[0]
        )
        transport.send(get(), 2.0)
        clock[0] += 3.9
        transport.send(get(), 2.0)
        clock[0] += 4.0
        transport.send(get(), 2.0)
        transport.close()
    assert server.connections == 2


def test_an_answer_cut_short_is_a_failure_and_the_connection_is_dropped() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{}"
    with scripted(lambda n, r: Close(cut) if n == 1 else ok()) as server:
        transport = PooledTransport(server.url, max_connections=1)
        with pytest.raises(BankUnavailable, match="before the end"):
            transport.send(get(), 2.0)
        assert transport.send(get(), 2.0).status == 200
        transport.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ],
)
def test_a_malformed_answer_is_a_failure(reply: bytes) -> None:
    with scripted(lambda n, r: reply) as server:
        transport = PooledTransport(server.url, max_connections=1)
        with pytest.raises(BankUnavailable, match="malformed"):
            transport.send(get(), 2.0)
        transport.close()


def test_an_answer_over_the_limit_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "MAX_ANSWER_BYTES", 1000)
    with scripted(lambda n, r: ok(b"x" * 1001)) as server:
        transport = PooledTransport(server.url, max_connections=1)
        with pytest.raises(BankUnavailable, match="too large"):
            transport.send(get(), 2.0)
        transport.close()


def test_a_silent_server_is_a_timeout_within_the_deadline() -> None:
    release = threading.Event()

    def script(number: int, request: bytes) -> Reply:
        release.wait(5)
        return None

    with scripted(script) as server:
        transport = PooledTransport(server.url, max_connections=1)
        started = time.monotonic()
        with pytest.raises(BankTimeout):
            transport.send(get(), 0.3)
        assert time.monotonic() - started < 1.0
        release.set()
        transport.close()


def test_the_pool_bound_makes_a_caller_wait_then_time_out() -> None:
    release = threading.Event()

    def script(number: int, request: bytes) -> Reply:
        release.wait(5)
        return ok()

    with scripted(script) as server:
        transport = PooledTransport(server.url, max_connections=1)
        first = threading.Thread(target=lambda: transport.send(get(), 5.0))
        first.start()
        time.sleep(0.1)
        with pytest.raises(BankTimeout, match="no free connection"):
            transport.send(get(), 0.2)
        release.set()
        first.join()
        transport.close()
    assert server.connections == 1


def test_a_refused_connection_is_named() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    transport = PooledTransport(f"http://127.0.0.1:{port}", max_connections=1)
    with pytest.raises(BankUnavailable, match="connection refused"):
        transport.send(get(), 1.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Request-ID", "a\r\nX-Injected: 1"),
        ("X-Request-ID", "a\nb"),
        ("X-Request-ID", "a\x00b"),
        ("Bad Name", "v"),
        ("X:Y", "v"),
    ],
)
def test_a_header_that_would_split_the_request_is_refused_before_sending(
    name: str, value: str
) -> None:
    with scripted(lambda n, r: ok()) as server:
        transport = PooledTransport(server.url, max_connections=1)
        with pytest.raises(BankUnavailable, match="invalid request header"):
            transport.send(BankRequest("GET", "/x", {name: value}), 1.0)
        transport.close()
    assert server.requests == []


@pytest.mark.parametrize("target", ["/a b", "/a\r\nHost: evil", "/\x7f"])
def test_a_target_that_would_split_the_request_line_is_refused(target: str) -> None:
    transport = PooledTransport("http://127.0.0.1:9", max_connections=1)
    with pytest.raises(BankUnavailable, match="invalid request"):
        transport.send(BankRequest("GET", target, {}), 1.0)


def test_tls_with_the_right_ca_works_and_with_another_ca_is_a_tls_failure(pki: TestPki) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.server_pem, pki.server_key)
    with scripted(lambda n, r: ok(), tls=server_tls) as server:
        url = server.url.replace("127.0.0.1", "localhost")
        good = PooledTransport(
            url, max_connections=1, tls=ssl.create_default_context(cafile=pki.ca_pem)
        )
        assert good.send(get(), 2.0).status == 200
        assert good.send(get(), 2.0).status == 200
        good.close()
        wrong = PooledTransport(
            url,
            max_connections=1,
            tls=ssl.create_default_context(cafile=str(pki.foreign_dir / "ca.pem")),
        )
        with pytest.raises(TlsFailure):
            wrong.send(get(), 2.0)
        wrong.close()
    assert server.connections == 2 and len(server.requests) == 2


def test_absolute_urls_of_another_origin_get_their_own_pool() -> None:
    with scripted(lambda n, r: ok()) as base, scripted(lambda n, r: ok(b"{}")) as other:
        transport = PooledTransport(base.url, max_connections=1)
        answer = transport.send(BankRequest("POST", other.url + "/token?x=1", {}, b"a=b"), 2.0)
        transport.send(get(), 2.0)
        transport.close()
    assert answer.content == b"{}"
    assert other.requests[0].startswith(b"POST /token?x=1 HTTP/1.1\r\n")
    assert len(base.requests) == 1
