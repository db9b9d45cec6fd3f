"""One structured log format for edge and central: one JSON object per line on stderr.

Every line has `ts` (UTC, ms), `level`, `logger` and `msg`, then the ids and values that apply:

- `log.info("camera health", extra={"fields": {"camera": "cam-1", "state": "streaming"}})`
- `log.info(kv("event_stored", id=event_id, camera="cam-1"))`: `msg` and `event` are the event name,
  the keywords are fields with their JSON types. `str(kv(...))` stays the logfmt text
  (`event=event_stored id=... camera=cam-1`), which is what plain handlers (pytest's caplog) show.
- a message written as logfmt (`"event=db_migrated revision=%s"`) is read back into fields too.
- `set_log_context(node="node-1")`: fields on every line of the process from then on.

stdout is not touched: central's `REPORT ...` console lines stay there, as they were.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_context: dict[str, Any] = {}
_LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def _logfmt_value(v: Any) -> str:
    text = "" if v is None else str(v)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogEvent(str):
    """A log message that is an event name with fields (see `kv`)."""

    event: str
    fields: dict[str, Any]

    def __new__(cls, event: str, fields: dict[str, Any]) -> LogEvent:
        text = " ".join([f"event={event}", *(f"{k}={_logfmt_value(v)}" for k, v in fields.items())])
        self = super().__new__(cls, text)
        self.event = event
        self.fields = fields
        return self


def kv(event: str, **fields: Any) -> LogEvent:
    """`log.info(kv("event_stored", id="x", camera="cam1"))`: one line with event=event_stored and the fields."""
    return LogEvent(event, fields)


def parse_logfmt(text: str) -> dict[str, str] | None:
    """`event=x a=1 b="two words"` -> {"event": "x", "a": "1", "b": "two words"}; None if not logfmt."""
    if not text.startswith("event="):
        return None
    out: dict[str, str] = {}
    pos = 0
    for m in _LOGFMT_PAIR.finditer(text):
        if text[pos : m.start()].strip():
            return None  # words between the pairs: a sentence that happens to start with event=
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), value[1:-1])
        out[m.group(1)] = value
        pos = m.end()
    return out if not text[pos:].strip() else None


def set_log_context(**fields: Any) -> None:
    """Fields every later line of this process carries (e.g. the node id); None removes one."""
    for k, v in fields.items():
        if v is None:
            _context.pop(k, None)
        else:
            _context[k] = v


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        out.update(_context)
        msg = record.msg
        if isinstance(msg, LogEvent) and not record.args:
            out["msg"] = out["event"] = msg.event
            out.update(msg.fields)
        else:
            text = record.getMessage()
            parsed = parse_logfmt(text)
            if parsed is not None:
                out["msg"] = parsed["event"]
                out.update(parsed)
            else:
                out["msg"] = text
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: str | int = "INFO") -> None:
    """JSON lines on stderr for the whole process (root logger)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
