"""Structured logs: one JSON object a line, from stdlib `logging`.

Why stdlib logging and not structlog: uvicorn, SQLAlchemy and the libraries stetgate uses
already log through it, so one formatter on the root handler puts *their* lines in the same
JSON stream, and uvicorn applies the same configuration in every worker (``log_config``).

A record carries its structured fields in one attribute, ``fields`` (``extra={"fields":
…}``): the access line (`stetgate.serving.access`) and the audit events
(`stetgate.observability.audit`) build that dictionary from *named* values only — route
template, status, identifiers, reasons — never from a request's headers, query, form or
cookies, so a token, code, password or one-time code has no way into a line (the redaction is
structural; tests/integration/test_observability.py greps a whole run for every secret it
used). Other records (warnings, uvicorn's start lines) keep their message as ``message``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import weakref
from typing import IO, Any, Literal

LogFormat = Literal["json", "text"]

ACCESS_LOGGER = "stetgate.access"
AUDIT_LOGGER = "stetgate.audit"

_encode_fields = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True
)
"""CPython's C encoder, built once: what ``JSONEncoder(separators=(",", ":"),
ensure_ascii=False, default=str).encode`` builds anew for every call. No circular-reference
bookkeeping: fields are flat values and small dictionaries made by stetgate's code."""


def _dumps(value: Any) -> str:
    """``value`` as compact JSON (non-ASCII kept, unknown types as their ``str``)."""
    return "".join(_encode_fields(value, 0))


class _Timestamps:
    """RFC 3339 UTC timestamps with milliseconds; the seconds part is formatted once a second
    (`time.strftime` costs more than the rest of a line)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


def _lean_records() -> None:
    """Skip what records would collect for nothing: the caller's file and line (a stack walk
    per record), the thread and process names. The Logging HOWTO's "Optimization" switches;
    neither formatter prints them. Called when a formatter is built, i.e. in each process
    that configures logging (uvicorn applies ``log_config`` in every worker)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", …fields}`` for structured records, ``{"ts", "level",
    "logger", "message"[, "exception"]}`` for the others.

    The ``"level":…,"logger":…`` part is encoded once per logger and level, and the fields
    are encoded as they are (no merged copy): a line costs one C-encoder call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._timestamp = _Timestamps()
        self._heads: dict[tuple[str, str], str] = {}
        _lean_records()

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if fields is None:
            fields = {"message": record.getMessage()}
            if record.exc_info:
                fields["exception"] = self.formatException(record.exc_info)
        key = (record.levelname, record.name)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = _dumps(
                {"level": record.levelname.lower(), "logger": record.name}
            )[1:-1]
        body = _dumps(fields)
        separator = "," if len(body) > 2 else ""
        return f'{{"ts":"{self._timestamp(record.created)}",{head}{separator}{body[1:]}'


class TextFormatter(logging.Formatter):
    """The same content for a terminal: ``time level logger: message key=value …``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._timestamp = _Timestamps()
        _lean_records()

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        head = f"{self._timestamp(record.created)} {record.levelname} {record.name}:"
        if fields is None:
            text = f"{head} {record.getMessage()}"
            if record.exc_info:
                text += "\n" + self.formatException(record.exc_info)
            return text
        return head + "".join(f" {k}={_dumps(v)}" for k, v in fields.items() if v is not None)


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A `logging.StreamHandler` that writes its lines in batches: every ``flush_seconds``
    (from a daemon thread of its own), when ``max_lines`` are waiting, at once for a record of
    ``flush_level`` (WARNING) or above — with the lines before it, in order — and when it is
    flushed or closed (`logging.shutdown` at interpreter exit, which a uvicorn worker reaches
    on a normal stop).

    Why: the refresh grant writes two lines per request (the access line and the
    ``token_refreshed`` audit line); one ``write`` and ``flush`` each was a system call per
    line on the event loop. A batch is one system call per ``flush_seconds``.

    What a crash may lose: a process killed outright (SIGKILL, the OOM killer, ``os._exit``)
    loses the INFO lines of its last ``flush_seconds`` (at most ``max_lines``). Warnings and
    errors are never held. The audit *rows* are written in the database in the transaction of
    what they record, so the audit trail itself loses nothing; only the watching copy in the
    log stream can miss those lines."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        flush_seconds: float = 0.1,
        max_lines: int = 256,
        flush_level: int = logging.WARNING,
    ) -> None:
        super().__init__(stream)
        self.flush_seconds = flush_seconds
        self.max_lines = max_lines
        self.flush_level = flush_level
        self._lines: list[str] = []
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        _buffered_handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        """Called under the handler's lock (`logging.Handler.handle`)."""
        try:
            line = self.format(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        lines = self._lines
        lines.append(line)
        if record.levelno >= self.flush_level or len(lines) >= self.max_lines:
            self.flush()
        elif self._flusher is None:
            self._start_flusher()

    def flush(self) -> None:
        """Write what is waiting, in one ``write``."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            lines, self._lines = self._lines, []
            stream = self.stream
            if not lines or stream is None:
                return
            try:
                stream.write(self.terminator.join(lines) + self.terminator)
                if hasattr(stream, "flush"):
                    stream.flush()
            except RecursionError:
                raise
            except Exception:
                if logging.raiseExceptions and sys.stderr is not None:
                    with contextlib.suppress(Exception):  # nowhere left to report it
                        sys.stderr.write(f"--- Logging error: {len(lines)} lines not written\n")

    def close(self) -> None:
        self._stopping.set()
        try:
            self.flush()
        finally:
            super().close()

    def _start_flusher(self) -> None:
        stopping = self._stopping
        reference = weakref.ref(self)
        interval = self.flush_seconds

        def run() -> None:
            while not stopping.wait(interval):
                handler = reference()
                if handler is None:
                    return
                handler.flush()
                del handler

        self._flusher = threading.Thread(target=run, name="stetgate-log-flush", daemon=True)
        self._flusher.start()

    def _after_fork_in_child(self) -> None:
        """In a forked child: the parent's thread did not come along (start one on demand),
        and the lines waiting are the parent's to write, not the child's."""
        self._flusher = None
        self._lines = []


_buffered_handlers: weakref.WeakSet[BufferedStreamHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_buffered_handlers):
        handler._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def log_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: everything to stderr through one formatter,
    in batches (`BufferedStreamHandler`: INFO lines within 100 ms, warnings at once).
    `stetgate serve` hands it to uvicorn (``log_config``), which applies it in the supervising
    process and in every worker. uvicorn's own access log stays off: the access line is
    stetgate's (`stetgate.serving.access`), with the route template and the caller."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"stetgate": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": f"{BufferedStreamHandler.__module__}.{BufferedStreamHandler.__qualname__}",
                "formatter": "stetgate",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's loggers come with handlers of their own in its default configuration.
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            # One line per core-banking call would double the access log; its latency and
            # failures are metrics, its failures also stetgate.bank_http warnings.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def configure_logging(log_format: LogFormat, level: str = "INFO") -> None:
    """Apply `log_config` in this process (the sandbox, a CLI command)."""
    import logging.config

    logging.config.dictConfig(log_config(log_format, level))
