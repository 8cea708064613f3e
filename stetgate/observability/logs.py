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

import json
import logging
import time
from typing import Any, Literal

LogFormat = Literal["json", "text"]

ACCESS_LOGGER = "stetgate.access"
AUDIT_LOGGER = "stetgate.audit"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


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


def log_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: everything to stderr through one formatter.
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
                "class": "logging.StreamHandler",
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
