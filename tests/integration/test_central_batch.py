"""Batched ingest (many events per transaction) against both databases: it must store exactly what
one-message-per-transaction stores, and one message the database rejects must not sink its batch."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from central.config import CentralConfig
from central.db import DeadLetterRow, EventRow, ReportEventRow, ReportHistoryRow, ReportRow, make_engine, migrate
from central.ingester import Ingester, MessageProcessor
from contract.topics import event_topic
from tests.services import Publisher, make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

T0 = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


def _processor(database_url: str, tmp_path: Path) -> tuple[MessageProcessor, Any]:
    cfg = CentralConfig.model_validate({"database_url": database_url, "evidence_dir": str(tmp_path / "evidence")})
    engine = make_engine(database_url)
    from central.db import make_session_factory

    proc = MessageProcessor(
        make_session_factory(engine),
        dialect_name=engine.dialect.name,
        evidence_dir=tmp_path / "evidence",
        topic_prefix="ioc",
        config=cfg,
    )
    return proc, engine


def _traffic() -> list[tuple[str, bytes]]:
    """A mixed stream: repeats of one group inside and outside the window, two groups, an
    incident's start/update/end, a better snapshot arriving later, a duplicate, invalid messages."""
    msgs: list[tuple[str, bytes]] = []

    def add(e: Any) -> None:
        msgs.append((event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()))

    no_snap = [{"kind": "clip", "media_type": "video/mp4", "sha256": "b" * 64, "size": 10}]
    for k in range(4):  # one group, every 60 s: one report of 4
        add(make_event(started_at=T0 + timedelta(seconds=60 * k), confidence=0.5 + k / 10, evidence=no_snap))
    add(make_event(started_at=T0 + timedelta(seconds=200), confidence=0.55))  # has a snapshot: becomes best
    add(make_event(started_at=T0 + timedelta(hours=3)))  # same group, far outside the window: new report
    add(make_event(camera="cam-2", started_at=T0 + timedelta(seconds=30)))
    twice = make_event(camera="cam-3", started_at=T0)
    add(twice)
    add(twice)  # the same id again in the same batch
    incident = "0190b8a2-7c1e-7d2a-9f00-0000000000aa"
    for phase, dt in (("start", 0), ("update", 60), ("end", 120)):
        add(
            make_event(
                type="sidewalk_encroachment",
                camera="cam-4",
                phase=phase,
                incident=incident,
                started_at=T0 + timedelta(seconds=dt),
                zone={"id": "walk-1", "kind": "sidewalk"},
            )
        )
    msgs.insert(3, (event_topic("ioc", "node-hue-01", "cam-le-loi-01", "illegal_stopping"), b"{not json"))
    bad_schema = json.loads(make_event().to_json()) | {"schema": "ioc.event/9"}
    msgs.insert(7, (event_topic("ioc", "node-hue-01", "cam-le-loi-01", "illegal_stopping"), json.dumps(bad_schema).encode()))
    return msgs


def _summary(engine: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        reports = conn.execute(select(ReportRow).order_by(ReportRow.first_seen, ReportRow.camera)).all()
        links = conn.execute(select(ReportEventRow.event_id, ReportEventRow.report_id)).all()
        history = conn.execute(select(ReportHistoryRow.report_id, ReportHistoryRow.action)).all()
        events = conn.execute(select(EventRow.id)).all()
        letters = conn.execute(select(DeadLetterRow.reason)).all()
    by_id = {r.id: i for i, r in enumerate(reports)}  # compare report identity by position, not by id
    return {
        "reports": [
            (r.group_key, r.incident, r.event_count, r.first_seen, r.last_seen, r.best_event_id, r.confidence,
             r.status, r.title_en, r.description_en)
            for r in reports
        ],
        "links": sorted((e, by_id[r]) for e, r in links),
        "history": sorted((by_id[r], a) for r, a in history),
        "events": sorted(e for (e,) in events),
        "letters": sorted(reason for (reason,) in letters),
    }


def test_one_batch_stores_exactly_what_one_message_at_a_time_stores(central_database_url: str, tmp_path: Path) -> None:
    traffic = _traffic()
    now = datetime.now(UTC)
    batched, engine = _processor(central_database_url, tmp_path)
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    migrate(reference_url)
    single, reference_engine = _processor(reference_url, tmp_path)
    try:
        outcomes = batched.process_events([(t, p, now) for t, p in traffic])
        one_by_one = [single.process(t, p, now) for t, p in traffic]
        assert [o.kind for o in outcomes] == [o.kind for o in one_by_one]
        kinds = [o.kind for o in outcomes]
        assert kinds.count("stored") == 11 and kinds.count("duplicate") == 1 and kinds.count("dead_letter") == 2
        assert [o.report_created for o in outcomes] == [o.report_created for o in one_by_one]
        got, want = _summary(engine), _summary(reference_engine)
        assert got == want
        counts = sorted(r[2] for r in got["reports"])
        assert counts == [1, 1, 1, 3, 5], counts  # cam-2, cam-3, 3 h later, the incident, the group of 5
        # The later event with a snapshot beat the more confident ones without.
        group = next(r for r in got["reports"] if r[2] == 5)
        assert group[6] == 0.55

        # The same batch again: every event is a duplicate, nothing changes.
        again = batched.process_events([(t, p, now) for t, p in traffic])
        assert [o.kind for o in again].count("stored") == 0
        assert _summary(engine)["reports"] == got["reports"]
    finally:
        engine.dispose()
        reference_engine.dispose()


def test_a_message_the_database_rejects_is_dead_lettered_alone(
    central_database_url: str, mqtt_broker: Any, tmp_path: Path
) -> None:
    """A NUL (which PostgreSQL's jsonb cannot hold) is refused by the contract now, on both databases,
    and dead-lettered alone; a row the database itself refuses is isolated in
    tests/integration/test_ingest_limits.py. Published while the ingester is away, so that they
    arrive together and form one batch."""
    cfg = CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "mqtt": {"url": mqtt_broker.url, "topic_prefix": unique_name("t"), "share_group": unique_name("g")},
            "evidence_dir": str(tmp_path / "evidence"),
        }
    )
    client_id = unique_name("central-batch-")
    good = [make_event(started_at=T0 + timedelta(seconds=k)) for k in range(20)]
    nul = make_event(details={"note": "ab"})  # the NUL goes in as JSON text: the contract refuses to build it
    first = Ingester(cfg, client_id=client_id, console=io.StringIO()).start()
    assert first.wait_subscribed(10)
    first.stop()  # the session stays: what is published now is queued for it
    with Publisher(mqtt_broker.url) as pub:
        for e in [*good[:10], nul, *good[10:]]:
            payload = e.to_json().replace('"note":"ab"', '"note":"a\\u0000b"').encode()
            pub.publish(event_topic(cfg.mqtt.topic_prefix, e.node, e.camera, e.type.value), payload)
    ing = Ingester(cfg, client_id=client_id, console=io.StringIO()).start()
    try:
        wait_until(lambda: ing.counters.stored + ing.counters.dead_letters == 21, timeout=30, what="all 21 processed")
        assert ing.counters.stored == 20
        assert ing.counters.dead_letters == 1
        assert ing.counters.acked == 21
    finally:
        ing.stop()
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            stored = {i for (i,) in conn.execute(select(EventRow.id))}
            letters = conn.execute(select(DeadLetterRow.reason, DeadLetterRow.payload)).all()
            (count,) = conn.execute(select(ReportRow.event_count)).one()
    finally:
        engine.dispose()
    assert {e.id for e in good} <= stored
    ((reason, payload),) = letters
    assert reason.startswith("invalid event:") and "NUL" in reason, reason
    assert json.loads(bytes(payload))["id"] == nul.id
    assert count == 20
