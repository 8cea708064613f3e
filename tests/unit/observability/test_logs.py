"""JSON and text formatters, and the logging configuration `serve` hands to uvicorn."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
from datetime import UTC, datetime

import pytest

from stetgate.observability.logs import JsonFormatter, TextFormatter, log_config

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _record(
    msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("stetgate.test", logging.WARNING, __file__, 1, msg, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_a_structured_record_is_its_fields_with_time_level_and_logger() -> None:
    record = _record(fields={"event": "request", "status": 200, "client_id": None})
    line = JsonFormatter().format(record)
    parsed = json.loads(line)
    assert (
        parsed.pop("ts")
        == datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(record.msecs):03d}Z"
    )
    assert parsed == {
        "level": "warning",
        "logger": "stetgate.test",
        "event": "request",
        "status": 200,
        "client_id": None,
    }
    assert "\n" not in line


def test_a_plain_record_keeps_its_message_and_never_its_arguments_apart() -> None:
    parsed = json.loads(JsonFormatter().format(_record()))
    assert parsed["message"] == "hello world"
    assert set(parsed) == {"ts", "level", "logger", "message"}
    assert TS.fullmatch(parsed["ts"])


def test_an_exception_is_one_json_string_not_extra_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", (), exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert line.count("\n") == 0
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_values_json_cannot_encode_are_written_as_text_and_newlines_escaped() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    line = JsonFormatter().format(_record(fields={"at": moment, "reason": "a\nb", "name": "é"}))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["at"] == str(moment) and parsed["reason"] == "a\nb" and parsed["name"] == "é"


def test_the_text_format_shows_the_same_fields_and_drops_empty_ones() -> None:
    text = TextFormatter().format(
        _record(fields={"event": "request", "status": 404, "client_id": None})
    )
    assert re.fullmatch(
        rf"{TS.pattern} WARNING stetgate.test: event=\"request\" status=404", text
    ), text


def test_the_configuration_sends_everything_through_one_formatter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = {name: logging.getLogger(name).level for name in ("uvicorn.access", "httpx")}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(log_config("json"))
        logging.getLogger("uvicorn.error").info("started")
        logging.getLogger("uvicorn.access").info("GET /x?code=secret 200")
        logging.getLogger("httpx").info("HTTP Request: GET http://bank/psus/x")
        logging.getLogger("stetgate.access").info("request", extra={"fields": {"status": 200}})
        for handler in root.handlers:  # INFO lines are written in batches
            handler.flush()
        lines = capsys.readouterr().err.splitlines()
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)
    parsed = [json.loads(line) for line in lines]
    assert [p["logger"] for p in parsed] == ["uvicorn.error", "stetgate.access"]
    assert "code=secret" not in "".join(lines)  # uvicorn's own access log stays off


def test_the_text_configuration_uses_the_text_formatter() -> None:
    config = log_config("text")
    assert config["formatters"]["stetgate"]["()"].endswith("TextFormatter")
    assert log_config("json")["formatters"]["stetgate"]["()"].endswith("JsonFormatter")


def test_a_record_with_no_fields_is_still_one_valid_object() -> None:
    parsed = json.loads(JsonFormatter().format(_record(fields={})))
    assert set(parsed) == {"ts", "level", "logger"}


def test_a_logger_name_needing_escapes_stays_valid_json() -> None:
    record = _record(fields={"status": 1})
    record.name = 'odd"name\\'
    assert json.loads(JsonFormatter().format(record))["logger"] == 'odd"name\\'
