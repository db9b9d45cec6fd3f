"""One-line structured logs: `event=<name> key=value ...` (logfmt), grep- and parser-friendly."""

from __future__ import annotations

import logging
import sys
from typing import Any


def _value(v: Any) -> str:
    text = "" if v is None else str(v)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def kv(event: str, **fields: Any) -> str:
    """`kv("event_stored", id="x", camera="cam1")` -> 'event=event_stored id=x camera=cam1'."""
    return " ".join([f"event={event}", *(f"{k}={_value(v)}" for k, v in fields.items())])


def setup_logging(level: str | int = "INFO") -> None:
    """Logs to stderr (stdout carries the REPORT console lines)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # paho logs nothing by default; uvicorn's access log is one line per request already.
    logging.getLogger("alembic").setLevel(logging.WARNING)
