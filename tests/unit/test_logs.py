"""One structured log format on both sides: JSON lines with the event name and ids as fields."""

from __future__ import annotations

import io
import json
import logging

import pytest

import central.logs
import edge.logs
from contract.logs import JsonFormatter, kv, parse_logfmt, set_log_context


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.logs")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    log.removeHandler(handler)
    set_log_context(node=None)


def test_both_sides_use_the_one_formatter() -> None:
    assert edge.logs.JsonFormatter is central.logs.JsonFormatter is JsonFormatter
    assert edge.logs.kv is central.logs.kv is kv


def test_kv_event_is_one_json_line_with_typed_fields(capture) -> None:
    log, lines = capture
    log.info(kv("event_stored", id="0190-x", camera="cam 1", new_report=True, count=3, note=None))
    (rec,) = lines()
    assert rec["msg"] == rec["event"] == "event_stored"
    assert rec["id"] == "0190-x" and rec["camera"] == "cam 1"
    assert rec["new_report"] is True and rec["count"] == 3 and rec["note"] is None
    assert rec["level"] == "info" and rec["logger"] == "test.logs" and rec["ts"].endswith("Z")


def test_kv_stays_logfmt_text_for_plain_handlers() -> None:
    assert str(kv("event_stored", id="x", camera="a b")) == 'event=event_stored id=x camera="a b"'


def test_fields_and_process_context(capture) -> None:
    log, lines = capture
    set_log_context(node="node-1")
    log.warning("camera overloaded", extra={"fields": {"camera": "cam-1", "event_id": "e1"}})
    (rec,) = lines()
    assert rec["node"] == "node-1" and rec["camera"] == "cam-1" and rec["event_id"] == "e1"
    assert rec["msg"] == "camera overloaded" and "event" not in rec


def test_logfmt_messages_become_fields_and_sentences_stay_text(capture) -> None:
    log, lines = capture
    log.info("event=db_migrated revision=%s backend=%s", "head", "sqlite")
    log.info("event=%s is not logfmt", "x")
    a, b = lines()
    assert a["event"] == "db_migrated" and a["revision"] == "head" and a["backend"] == "sqlite"
    assert b["msg"] == "event=x is not logfmt" and "event" not in b


def test_exceptions_are_one_line(capture) -> None:
    log, lines = capture
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception(kv("store_failed", id="e1"))
    (rec,) = lines()
    assert rec["event"] == "store_failed" and "ValueError: boom" in rec["exc"]


def test_parse_logfmt_quotes() -> None:
    assert parse_logfmt('event=a b="x \\"y\\"" c=') == {"event": "a", "b": 'x "y"', "c": ""}
    assert parse_logfmt("not logfmt") is None
