"""Central as the tests drive it: the ingester's message processor over a test database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from sqlalchemy.engine import Engine

from central.config import CentralConfig
from central.db import make_session_factory
from central.ingester import MessageProcessor
from edge.local_broker import free_port
from tests.services import wait_until


def ingest_processor(cfg: CentralConfig, engine: Engine) -> MessageProcessor:
    """The ingester minus MQTT: it fills `engine`'s database the way the ingester does, with `cfg`
    (alerts, share links, limits) and the topic prefix "ioc" the tests publish under."""
    return MessageProcessor(
        make_session_factory(engine),
        dialect_name=engine.dialect.name,
        evidence_dir=cfg.evidence_dir,
        topic_prefix="ioc",
        config=cfg,
    )


@contextlib.contextmanager
def live_server(app: Any, port: int | None = None) -> Iterator[int]:
    """`app` served by a real uvicorn on 127.0.0.1 (`port`, else a free one) while the block runs;
    yields the port."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=20, what="uvicorn started")
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
