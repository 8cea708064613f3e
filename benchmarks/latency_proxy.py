"""A TCP proxy that adds a fixed one-way delay in each direction: a "remote" database on the
same box.

    .venv/bin/python benchmarks/latency_proxy.py --listen-port 6543 --target 127.0.0.1:5432 \
        --delay-ms 0.5                    # each direction: PostgreSQL round trip + 1 ms
    .venv/bin/python benchmarks/latency_proxy.py --measure [--delay-ms 0.5] [--pings 2000]

It listens on 127.0.0.1 only. Every chunk read from one side is written to the other side
``--delay-ms`` (``--delay-ms-up`` / ``--delay-ms-down`` for each direction) after it was read,
in order, with the TCP stream otherwise untouched (any protocol, TLS included); EOF and close
are delayed alike. With a delay of 0 a chunk is written as soon as it is read (no timer), so
"0 ms proxy vs direct" is the proxy's own cost.

Not the bottleneck, and precise: one asyncio event loop (uvloop when installed) moves the
bytes, no thread per connection. asyncio and libuv timers only have millisecond resolution
(a 0.5 ms delay would become ~1 ms), so the delays are driven by one Linux ``timerfd``
(CLOCK_MONOTONIC, absolute deadlines, nanosecond resolution) registered as a reader on the
loop: each direction of each connection keeps a FIFO of (deadline, bytes) and the earliest
deadline of all arms the timer. Elsewhere (no timerfd) it falls back to ``loop.call_later``
and says so. Back-pressure: when a destination's write buffer fills, the source stops
reading until it drains.

``--measure`` reports the proxy's cost and accuracy against a live PostgreSQL
(``--pg-url``): round-trip time of ``SELECT 1`` direct, through the proxy with 0 ms and with
the configured delay (median, p99; the added round trip should be 2 x delay), plus the
proxy's CPU per round trip, and ``SELECT 1`` throughput of 16 concurrent connections direct
vs through the 0 ms proxy. Other scripts start it with `start_proxy` (a child process, so its
CPU is accounted separately).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import heapq
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --- precise deadlines ---------------------------------------------------------------------------

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class Deadlines:
    """Callbacks run at absolute ``time.monotonic()`` deadlines with sub-millisecond accuracy.

    Entries due within ``slack`` of the wake-up run together (one wake-up for a burst). A
    wake-up comes some tens of microseconds late (more on a virtual machine): `calibrate`
    measures that latency and the timer is then armed that much early (``early``), so the
    delays average what was asked rather than asked + wake-up latency."""

    slack = 0.00002
    early = 0.0

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.armed_for: float | None = None
        self.fd = -1
        self.libc: Any = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            except (OSError, AttributeError):
                fd = -1
            if fd >= 0:
                self.libc, self.fd = libc, fd
                loop.add_reader(fd, self._fire)
        self.precise = self.fd >= 0
        self._handle: asyncio.TimerHandle | None = None

    def at(self, deadline: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self.heap, (deadline, next(self.order), callback))
        if self.armed_for is None or deadline < self.armed_for:
            self._arm(deadline)

    async def calibrate(self, shots: int = 200, delay: float = 0.0005) -> float:
        """Median wake-up latency of ``shots`` timers (capped at 0.2 ms); sets ``early``."""
        loop = asyncio.get_running_loop()
        self.early = 0.0
        late: list[float] = []
        for _ in range(shots):
            woken: asyncio.Future[None] = loop.create_future()
            deadline = time.monotonic() + delay
            self.at(
                deadline,
                lambda w=woken, d=deadline: (late.append(time.monotonic() - d), w.set_result(None)),
            )
            await woken
        self.early = min(statistics.median(late), 0.0002)
        return self.early

    def _arm(self, deadline: float) -> None:
        self.armed_for = deadline
        deadline -= self.early
        if self.fd >= 0:
            seconds = int(deadline)
            spec = _Itimerspec(
                _Timespec(0, 0), _Timespec(seconds, max(1, int((deadline - seconds) * 1e9)))
            )
            if self.libc.timerfd_settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None):
                raise OSError(ctypes.get_errno(), "timerfd_settime")
        else:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self.loop.call_later(max(0.0, deadline - time.monotonic()), self._fire)

    def _fire(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(BlockingIOError):
                os.read(self.fd, 8)
        self.armed_for = None
        heap = self.heap
        limit = time.monotonic() + self.early + self.slack
        while heap and heap[0][0] <= limit:
            heapq.heappop(heap)[2]()
        if heap and self.armed_for is None:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


# --- the proxy ---------------------------------------------------------------------------------

_EOF = b""
"""Queued after the last chunk when the source half-closed."""


class Direction:
    """One direction of one proxied connection: chunks read from ``source`` are written to
    the destination ``delay`` seconds later, in order."""

    def __init__(self, deadlines: Deadlines, delay: float) -> None:
        self.deadlines = deadlines
        self.delay = delay
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.scheduled = False
        self.source: Any = None
        self.destination: Any = None
        self.held: list[bytes | None] = []
        """Due before the destination was connected (uvloop reads an accepted socket even
        when ``connection_made`` paused it)."""

    def attach(self, destination: Any) -> None:
        self.destination = destination
        held, self.held = self.held, []
        for data in held:
            self._deliver(data)

    def feed(self, data: bytes | None) -> None:
        """``data``: bytes, ``_EOF`` (half-close) or None (the source closed)."""
        if self.delay <= 0 and not self.queue:
            self._deliver(data)
            return
        self.queue.append((time.monotonic() + self.delay, data))
        if not self.scheduled:
            self.scheduled = True
            self.deadlines.at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        queue = self.queue
        limit = time.monotonic() + self.deadlines.early + Deadlines.slack
        while queue and queue[0][0] <= limit:
            self._deliver(queue.popleft()[1])
        if queue:
            self.deadlines.at(queue[0][0], self._flush)
        else:
            self.scheduled = False

    def _deliver(self, data: bytes | None) -> None:
        destination = self.destination
        if destination is None:
            self.held.append(data)
            return
        if destination.is_closing():
            return
        if data is None:
            destination.close()
        elif data is _EOF:
            if destination.can_write_eof():
                destination.write_eof()
        else:
            destination.write(data)


class Side(asyncio.Protocol):
    """One socket of a proxied pair; ``outgoing`` carries what it reads to the other socket,
    ``incoming`` brings what the other socket read."""

    def __init__(self, outgoing: Direction, incoming: Direction) -> None:
        self.outgoing = outgoing
        self.incoming = incoming
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.outgoing.source = transport
        self.incoming.attach(transport)

    def data_received(self, data: bytes) -> None:
        self.outgoing.feed(data)

    def eof_received(self) -> bool:
        self.outgoing.feed(_EOF)
        return True  # keep our write side open until the peer's data is through

    def connection_lost(self, exc: Exception | None) -> None:
        self.outgoing.feed(None)

    def pause_writing(self) -> None:
        source = self.incoming.source
        if source is not None and not source.is_closing():
            source.pause_reading()

    def resume_writing(self) -> None:
        source = self.incoming.source
        if source is not None and not source.is_closing():
            source.resume_reading()


class Proxy:
    def __init__(
        self,
        target: tuple[str, int],
        delay_up: float,
        delay_down: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.target = target
        self.delay_up = delay_up
        self.delay_down = delay_down
        self.loop = loop
        self.deadlines = Deadlines(loop)
        self.connections = 0

    def accepted(self) -> Side:
        """Protocol for an accepted client socket: reading waits until the target answered."""
        up = Direction(self.deadlines, self.delay_up)
        down = Direction(self.deadlines, self.delay_down)
        client = _ClientSide(up, down, self)
        return client

    async def connect(self, client: _ClientSide) -> None:
        try:
            transport, _ = await self.loop.create_connection(
                lambda: Side(client.incoming, client.outgoing), *self.target
            )
        except OSError:
            client.transport.close()
            return
        if client.transport.is_closing():  # the client left while we were connecting
            transport.close()
            return
        self.connections += 1
        client.transport.resume_reading()


class _ClientSide(Side):
    def __init__(self, outgoing: Direction, incoming: Direction, proxy: Proxy) -> None:
        super().__init__(outgoing, incoming)
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        self.proxy.loop.create_task(self.proxy.connect(self))


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    uvloop.install()
    return "uvloop"


async def serve(
    listen_port: int,
    target: tuple[str, int],
    delay_up: float,
    delay_down: float,
    ready: Callable[[int, Proxy], None] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    proxy = Proxy(target, delay_up, delay_down, loop)
    if delay_up > 0 or delay_down > 0:
        await proxy.deadlines.calibrate()
    server = await loop.create_server(proxy.accepted, "127.0.0.1", listen_port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready(port, proxy)
    async with server:
        await stop.wait()
    proxy.deadlines.close()


def parse_target(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise argparse.ArgumentTypeError("the target must be on 127.0.0.1")
    return "127.0.0.1", int(port)


# --- from other scripts --------------------------------------------------------------------------


def start_proxy(
    target: tuple[str, int], delay_ms_up: float, delay_ms_down: float | None = None
) -> tuple[int, subprocess.Popen[str]]:
    """This script as a child process on a free port; returns (port, process). Stop it with
    `stop_process`."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--listen-port",
        "0",
        "--target",
        f"{target[0]}:{target[1]}",
        "--delay-ms-up",
        str(delay_ms_up),
        "--delay-ms-down",
        str(delay_ms_up if delay_ms_down is None else delay_ms_down),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening 127.0.0.1:PORT ..."
    if not line.startswith("listening"):
        process.kill()
        raise RuntimeError(f"latency proxy did not start: {line!r}")
    port = int(line.split()[1].rsplit(":", 1)[1])
    # Keep draining stdout so the child can never block on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return port, process


def stop_process(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds (also for the benchmarks' server)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- --measure -----------------------------------------------------------------------------------


def _url_via(url: str, port: int) -> str:
    head, _, tail = url.partition("@")
    database = tail.partition("/")[2]
    return f"{head}@127.0.0.1:{port}/{database}"


def _pings(conninfo: str, count: int) -> list[float]:
    import psycopg

    timings = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for _ in range(50):
            conn.execute("SELECT 1").fetchone()
        for _ in range(count):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            timings.append(time.perf_counter() - started)
    return sorted(timings)


def _concurrent_rate(conninfo: str, clients: int, seconds: float) -> float:
    import psycopg

    done = [0] * clients
    stop_at = time.perf_counter() + seconds

    def run(index: int) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while time.perf_counter() < stop_at:
                conn.execute("SELECT 1").fetchone()
                done[index] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def measure(pg_url: str, delay_ms: float, pings: int) -> dict[str, Any]:
    """Round trips direct, through a 0 ms proxy and through a ``delay_ms`` proxy."""
    host_port = pg_url.partition("@")[2].partition("/")[0]
    target = parse_target(host_port if ":" in host_port else f"{host_port}:5432")
    direct = _libpq(pg_url)
    result: dict[str, Any] = {"pings": pings, "delay_ms_each_way": delay_ms}
    paths: list[tuple[str, float | None]] = [("direct", None), ("proxy 0 ms", 0.0)]
    if delay_ms > 0:
        paths.append((f"proxy {delay_ms:g} ms each way", delay_ms))
    for name, delay in paths:
        if delay is None:
            timings = _pings(direct, pings)
            cpu = None
        else:
            port, process = start_proxy(target, delay)
            try:
                before = process_cpu_seconds(process.pid)
                timings = _pings(_url_via(direct, port), pings)
                cpu = (process_cpu_seconds(process.pid) - before) / (pings + 50)
            finally:
                stop_process(process)
        result[name] = {
            "median_ms": statistics.median(timings) * 1e3,
            "p99_ms": timings[int(len(timings) * 0.99) - 1] * 1e3,
            "proxy_cpu_us_per_round_trip": None if cpu is None else cpu * 1e6,
        }
    port, process = start_proxy(target, 0.0)
    try:
        result["select1_per_s_16_clients"] = {
            "direct": _concurrent_rate(direct, 16, 3.0),
            "proxy 0 ms": _concurrent_rate(_url_via(direct, port), 16, 3.0),
        }
    finally:
        stop_process(process)
    return result


def print_measure(result: dict[str, Any]) -> None:
    base = result["direct"]["median_ms"]
    print(f"SELECT 1 round trips ({result['pings']} each, sequential):")
    for name, row in result.items():
        if not isinstance(row, dict) or "median_ms" not in row:
            continue
        cpu = row["proxy_cpu_us_per_round_trip"]
        print(
            f"  {name:<26} median {row['median_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  "
            f"added {row['median_ms'] - base:+.3f} ms"
            + ("" if cpu is None else f"  proxy CPU {cpu:.0f} µs/round trip")
        )
    rates = result["select1_per_s_16_clients"]
    print(
        f"SELECT 1/s, 16 concurrent connections: direct {rates['direct']:,.0f}, "
        f"0 ms proxy {rates['proxy 0 ms']:,.0f} "
        f"({rates['proxy 0 ms'] / rates['direct'] - 1:+.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--listen-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--target", type=parse_target, default=("127.0.0.1", 5432))
    parser.add_argument("--delay-ms", type=float, default=0.5, help="each direction")
    parser.add_argument("--delay-ms-up", type=float, default=None, help="client to target")
    parser.add_argument("--delay-ms-down", type=float, default=None, help="target to client")
    parser.add_argument("--measure", action="store_true", help="cost and accuracy, then exit")
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "STETGATE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.measure:
        print_measure(measure(args.pg_url, args.delay_ms, args.pings))
        return
    up = args.delay_ms if args.delay_ms_up is None else args.delay_ms_up
    down = args.delay_ms if args.delay_ms_down is None else args.delay_ms_down
    loop_name = _install_uvloop()

    def ready(port: int, proxy: Proxy) -> None:
        timers = "timerfd" if proxy.deadlines.precise else "loop timers (ms resolution)"
        timers += f", armed {proxy.deadlines.early * 1e6:.0f} µs early"
        print(
            f"listening 127.0.0.1:{port} -> {args.target[0]}:{args.target[1]} "
            f"delay {up:g} ms up, {down:g} ms down ({loop_name}, {timers})",
            flush=True,
        )

    asyncio.run(serve(args.listen_port, args.target, up / 1e3, down / 1e3, ready))


if __name__ == "__main__":
    main()
