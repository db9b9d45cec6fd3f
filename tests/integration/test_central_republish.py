"""Event first, clip later: the edge publishes an event as soon as it decides (snapshots only,
`evidence_pending: [clip]`) and again, same id, once the clip is written. Central merges the two
in whichever order (and whichever batches) they arrive, on both databases; a message that
re-uses an id with other content is a conflict and is dead-lettered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.db import DeadLetterRow, EventRow, ReportRow, make_engine, make_session_factory
from central.ingester import MessageProcessor
from central.reports import report_view
from contract.events import ViolationEvent
from contract.topics import event_topic
from tests.services import make_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SNAPSHOT = {"kind": "snapshot", "media_type": "image/jpeg", "sha256": "a" * 64, "size": 48213}
CLIP = {"kind": "clip", "media_type": "video/mp4", "sha256": "b" * 64, "size": 1843200}


def _pair() -> tuple[ViolationEvent, ViolationEvent]:
    first = make_event(evidence=[SNAPSHOT], evidence_pending=["clip"])
    with_clip = first.model_copy(update={"evidence": [*first.evidence, first.evidence[0].model_copy(update=CLIP)],
                                         "evidence_pending": []})
    return first, ViolationEvent.model_validate(json.loads(with_clip.to_json()))


def _msg(e: ViolationEvent) -> tuple[str, bytes, datetime]:
    return event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode(), datetime.now(UTC)


@pytest.fixture
def processor(central_database_url: str, tmp_path: Path) -> Any:
    engine = make_engine(central_database_url)
    proc = MessageProcessor(
        make_session_factory(engine), dialect_name=engine.dialect.name, evidence_dir=tmp_path / "ev", topic_prefix="ioc"
    )
    yield proc, engine
    engine.dispose()


def _stored(engine: Any, event_id: str) -> tuple[ViolationEvent, str, int]:
    with engine.connect() as conn:
        (payload,) = conn.execute(select(EventRow.payload).where(EventRow.id == event_id)).one()
        (description, count) = conn.execute(select(ReportRow.description_en, ReportRow.event_count)).one()
    return ViolationEvent.model_validate(payload), description, count


@pytest.mark.parametrize("order", ["event_then_clip", "clip_then_event", "one_batch", "one_batch_reversed"])
def test_the_clip_joins_its_event_in_any_order(processor: Any, order: str) -> None:
    proc, engine = processor
    first, with_clip = _pair()
    if order == "event_then_clip":
        kinds = [o.kind for m in (first, with_clip) for o in proc.process_events([_msg(m)])]
        assert kinds == ["stored", "amended"]
    elif order == "clip_then_event":
        kinds = [o.kind for m in (with_clip, first) for o in proc.process_events([_msg(m)])]
        assert kinds == ["stored", "duplicate"]  # the first message adds nothing to what is stored
    elif order == "one_batch":
        assert [o.kind for o in proc.process_events([_msg(first), _msg(with_clip)])] == ["stored", "amended"]
    else:
        assert [o.kind for o in proc.process_events([_msg(with_clip), _msg(first)])] == ["stored", "duplicate"]
    stored, description, count = _stored(engine, first.id)
    assert [e.kind for e in stored.evidence] == ["snapshot", "clip"]
    assert stored.evidence_pending == []
    assert count == 1  # one event, one report: the re-publish is not a second sighting
    assert "Video clip sha256:bbbbbbbbbbbb" in description  # the report's texts list the clip
    # Redeliveries of either message change nothing.
    assert [o.kind for o in proc.process_events([_msg(first), _msg(with_clip)])] == ["duplicate", "duplicate"]
    assert _stored(engine, first.id)[0] == stored


def test_while_the_clip_is_pending_the_report_says_so(processor: Any) -> None:
    proc, engine = processor
    first, _ = _pair()
    (outcome,) = proc.process_events([_msg(first)])
    assert outcome.kind == "stored"
    stored, description, _ = _stored(engine, first.id)
    assert stored.evidence_pending == ["clip"] and "Video clip" not in description
    with Session(engine) as s:
        view = report_view(s.scalars(select(ReportRow)).one(), stored)
    assert [p["kind"] for p in view["evidence_pending"]] == ["clip"]
    assert [e["kind"] for e in view["evidence"]] == ["snapshot"]


def test_a_reused_id_with_other_content_is_dead_lettered(processor: Any) -> None:
    proc, engine = processor
    first, with_clip = _pair()
    forged = with_clip.model_copy(update={"confidence": 0.2})
    assert [o.kind for o in proc.process_events([_msg(first)])] == ["stored"]
    outcomes = proc.process_events([_msg(forged)])
    assert [o.kind for o in outcomes] == ["dead_letter"]
    assert "already stored with other content" in (outcomes[0].reason or "")
    # In one batch with the genuine re-publish: the conflicting copy is dead-lettered, not the rest.
    other, other_clip = _pair()
    other_forged = other_clip.model_copy(update={"details": {"stopped_seconds": 1.0}})
    kinds = [o.kind for o in proc.process_events([_msg(other), _msg(other_forged), _msg(other_clip)])]
    assert kinds == ["stored", "dead_letter", "amended"]
    assert _stored_evidence(engine, first.id) == ["snapshot"]
    assert _stored_evidence(engine, other.id) == ["snapshot", "clip"]
    with engine.connect() as conn:
        letters = conn.execute(select(DeadLetterRow.payload)).scalars().all()
    assert sorted(json.loads(bytes(p))["confidence"] for p in letters) == sorted([0.2, other_forged.confidence])


def _stored_evidence(engine: Any, event_id: str) -> list[str]:
    with engine.connect() as conn:
        (payload,) = conn.execute(select(EventRow.payload).where(EventRow.id == event_id)).one()
    return [e["kind"] for e in payload["evidence"]]
