"""`BufferedStreamHandler`: INFO lines leave in batches, warnings at once and in order, nothing
is lost by a flush, a close or a full batch, and a broken stream never raises into the caller."""

from __future__ import annotations

import io
import logging
import os
import threading
from pathlib import Path

import pytest

from stetgate.observability.logs import BufferedStreamHandler, JsonFormatter


class CountingStream(io.StringIO):
    """Records each ``write`` call: a batch is one write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        self.written.set()
        return super().write(text)


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stderr is gone")


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"stetgate.test.buffered.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


@pytest.fixture
def stream() -> CountingStream:
    return CountingStream()


def _handler(stream: io.StringIO, **options: float) -> BufferedStreamHandler:
    handler = BufferedStreamHandler(stream, flush_seconds=3600, **options)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


def test_info_lines_wait_for_the_next_flush(stream: CountingStream) -> None:
    handler = _handler(stream)
    logger = _logger(handler, "wait")
    logger.info("one")
    logger.info("two")
    assert stream.getvalue() == "" and stream.writes == 0
    handler.flush()
    assert stream.getvalue() == "INFO one\nINFO two\n"
    assert stream.writes == 1
    handler.close()


def test_a_warning_is_written_at_once_after_the_lines_before_it(stream: CountingStream) -> None:
    handler = _handler(stream)
    logger = _logger(handler, "warning")
    logger.info("before")
    logger.warning("database unavailable")
    assert stream.getvalue() == "INFO before\nWARNING database unavailable\n"
    logger.error("worse")
    assert stream.getvalue().endswith("ERROR worse\n")
    handler.close()


def test_a_full_batch_is_written_without_waiting(stream: CountingStream) -> None:
    handler = _handler(stream, max_lines=3)
    logger = _logger(handler, "full")
    for index in range(7):
        logger.info("line %d", index)
    assert stream.getvalue().splitlines() == [f"INFO line {index}" for index in range(6)]
    assert stream.writes == 2
    handler.close()
    assert stream.getvalue().splitlines()[-1] == "INFO line 6"


def test_closing_writes_what_is_waiting(stream: CountingStream) -> None:
    handler = _handler(stream)
    _logger(handler, "close").info("last words")
    handler.close()
    assert stream.getvalue() == "INFO last words\n"


def test_the_flusher_thread_writes_without_any_further_record(stream: CountingStream) -> None:
    handler = BufferedStreamHandler(stream, flush_seconds=0.01)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    _logger(handler, "timer").info("request", extra={"fields": {"status": 200}})
    assert stream.written.wait(timeout=5), "the periodic flush never came"
    assert '"status":200' in stream.getvalue()
    handler.close()


def test_a_broken_stream_never_raises_into_the_caller(capsys: pytest.CaptureFixture[str]) -> None:
    handler = _handler(BrokenStream())
    logger = _logger(handler, "broken")
    logger.info("held")
    logger.warning("written at once, and the write fails")
    handler.flush()
    handler.close()
    assert "lines not written" in capsys.readouterr().err


def test_nothing_is_written_twice(stream: CountingStream) -> None:
    handler = _handler(stream)
    logger = _logger(handler, "twice")
    logger.info("once")
    handler.flush()
    handler.flush()
    logger.warning("warned")
    handler.close()
    assert stream.getvalue() == "INFO once\nWARNING warned\n"


def test_a_forked_child_writes_only_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("w") as output:
        handler = BufferedStreamHandler(output, flush_seconds=3600)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = _logger(handler, "fork")
        logger.info("parent, before the fork")
        pid = os.fork()
        if pid == 0:  # the child: one line of its own, then exit through logging's shutdown
            try:
                logger.info("child")
                handler.close()
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        handler.close()
    messages = path.read_text().splitlines()
    assert sorted(messages) == ["child", "parent, before the fork"]
