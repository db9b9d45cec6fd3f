"""Central's logs: the one structured format of both sides (contract.logs), JSON lines on stderr.

`kv("event_stored", event_id=..., camera=...)` makes one line with `"event": "event_stored"` and the
fields; stdout carries only the `REPORT ...` console lines.
"""

from __future__ import annotations

import logging

from contract.logs import JsonFormatter, LogEvent, kv, set_log_context
from contract.logs import setup_logging as _setup_logging

__all__ = ["JsonFormatter", "LogEvent", "kv", "set_log_context", "setup_logging"]


def setup_logging(level: str | int = "INFO") -> None:
    """Logs to stderr (stdout carries the REPORT console lines)."""
    _setup_logging(level)
    # paho logs nothing by default; uvicorn's access log is one line per request already.
    logging.getLogger("alembic").setLevel(logging.WARNING)
