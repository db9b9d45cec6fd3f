"""Central as the tests drive it: the ingester's message processor over a test database."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from central.config import CentralConfig
from central.db import make_session_factory
from central.ingester import MessageProcessor


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
