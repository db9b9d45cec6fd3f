"""Central keeps evidence per category: on SQLite and PostgreSQL, files and rows of expired
evidence go, evidence any younger event still needs stays, and orphans get the longest time."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from central.db import EvidenceRow, make_engine, make_session_factory, session_scope, utcnow
from central.evidence_retention import purge_expired_evidence
from central.ingester import MessageProcessor
from central.storage import LocalDiskStorage
from contract.topics import event_topic, evidence_topic
from tests.services import fake_jpeg, make_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DAYS = {"traffic": 365.0, "urban_order": 180.0, "sanitation": 90.0}


def test_purge_by_category(central_database_url: str, tmp_path: Path) -> None:
    engine = make_engine(central_database_url)
    sessions = make_session_factory(engine)
    ev_dir = tmp_path / "ev"
    processor = MessageProcessor(sessions, dialect_name=engine.dialect.name, evidence_dir=ev_dir, topic_prefix="ioc")
    now = utcnow()
    files = {name: fake_jpeg(name, 3000) for name in ("traffic_old", "litter_old", "shared", "orphan_new", "orphan_old")}
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for name, data in files.items():
        assert processor.process(evidence_topic("ioc", "n1", "c1", sha[name]), data).kind == "evidence_stored"

    def ref(name: str) -> dict:
        return {"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha[name], "size": 3000}

    events = [
        make_event(type="illegal_stopping", started_at=now - timedelta(days=100), evidence=[ref("traffic_old")]),
        make_event(type="littering", started_at=now - timedelta(days=100), evidence=[ref("litter_old"), ref("shared")]),
        make_event(type="illegal_stopping", started_at=now - timedelta(days=10), evidence=[ref("shared")]),
    ]
    for e in events:
        assert processor.process(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()).kind == "stored"
    # Everything arrived long ago (as far as the evidence table knows).
    ages = {"traffic_old": 100, "litter_old": 100, "shared": 100, "orphan_new": 100, "orphan_old": 400}
    with session_scope(sessions) as s:
        for name, days in ages.items():
            s.execute(update(EvidenceRow).where(EvidenceRow.sha256 == sha[name]).values(received_at=now - timedelta(days=days)))

    storage = LocalDiskStorage(ev_dir)
    result = purge_expired_evidence(sessions, storage, DAYS, now=now)
    with sessions() as s:
        left = set(s.scalars(select(EvidenceRow.sha256)))
    gone = {"litter_old", "orphan_old"}  # sanitation after 90 days; an orphan after the longest (365)
    assert left == {sha[n] for n in files if n not in gone}
    for name in files:
        assert storage.exists(sha[name]) == (name not in gone), name
    assert (result.deleted, result.deleted_bytes) == (2, 6000)
    # A second pass has nothing more to do.
    assert purge_expired_evidence(sessions, storage, DAYS, now=now).deleted == 0
    engine.dispose()
