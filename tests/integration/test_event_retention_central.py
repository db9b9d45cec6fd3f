"""Central deletes old events in batches: on SQLite and PostgreSQL, an old report goes with its
events (and its history, by cascade), a report still growing keeps even its old events, young
events stay, old unlinked events and old dead letters go, and a second pass has nothing to do."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from central.db import (
    DeadLetterRow,
    EventRow,
    ReportHistoryRow,
    ReportRow,
    make_engine,
    make_session_factory,
    session_scope,
    utcnow,
)
from central.event_retention import purge_expired_events
from central.ingester import MessageProcessor
from contract.topics import event_topic
from tests.services import make_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_purge_old_events(central_database_url: str, tmp_path: Path) -> None:
    engine = make_engine(central_database_url)
    sessions = make_session_factory(engine)
    processor = MessageProcessor(
        sessions, dialect_name=engine.dialect.name, evidence_dir=tmp_path / "ev", topic_prefix="ioc"
    )
    now = utcnow()
    # One camera each, so no two events group into one report.
    old = [make_event(camera=f"cam-old-{i}", started_at=now - timedelta(days=800)) for i in range(3)]
    growing = make_event(camera="cam-growing", started_at=now - timedelta(days=800))
    young = make_event(camera="cam-young", started_at=now - timedelta(days=5))
    for e in [*old, growing, young]:
        assert (
            processor.process(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()).kind == "stored"
        )
    with session_scope(sessions) as s:
        # The ingester stamps reports with the arrival time; set them to the events' times.
        s.execute(update(ReportRow).values(created_at=now - timedelta(days=800), last_seen=now - timedelta(days=800)))
        s.execute(update(ReportRow).where(ReportRow.camera == "cam-young").values(last_seen=now - timedelta(days=5)))
        s.execute(update(ReportRow).where(ReportRow.camera == "cam-growing").values(last_seen=now - timedelta(days=1)))
        ids = list(s.scalars(select(ReportRow.id)))
        s.add_all(ReportHistoryRow(report_id=i, actor="t", action="create", at=now - timedelta(days=800)) for i in ids)
        s.add(DeadLetterRow(topic="x", payload=b"{", reason="json", received_at=now - timedelta(days=900)))
        s.add(DeadLetterRow(topic="x", payload=b"{", reason="json", received_at=now - timedelta(days=2)))

    result = purge_expired_events(sessions, 730, now=now, batch=2)  # batch=2: several batches
    assert (result.reports, result.events, result.dead_letters) == (3, 3, 1)
    with sessions() as s:
        assert set(s.scalars(select(EventRow.id))) == {growing.id, young.id}
        assert set(s.scalars(select(ReportRow.camera))) == {"cam-growing", "cam-young"}
        kept = set(s.scalars(select(ReportRow.id)))
        assert set(s.scalars(select(ReportHistoryRow.report_id))) == kept  # the rest went by cascade
        assert s.scalar(select(func.count()).select_from(DeadLetterRow)) == 1
    assert purge_expired_events(sessions, 730, now=now) == type(result)(0, 0, 0)
    engine.dispose()
