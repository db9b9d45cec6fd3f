"""The edge's logs: the one structured format of both sides (contract.logs), JSON lines on stderr."""

from __future__ import annotations

from contract.logs import JsonFormatter, kv, set_log_context, setup_logging

__all__ = ["JsonFormatter", "kv", "set_log_context", "setup_logging"]
