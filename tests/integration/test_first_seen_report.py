"""A long sidewalk incident through central (issue 16, item 6): the edge pipeline's real events and
files (start, minutes of updates, end) go through the real ingester; after the last phase the
report still shows "Lúc bắt đầu / When it started" with the first-appearance picture (one stored
file, the same sha256 on every phase) and its time, and central's retention keeps it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from central.config import CentralConfig
from central.db import EventRow, EvidenceRow, ReportRow, make_engine, make_session_factory, utcnow
from central.evidence_retention import purge_expired_evidence
from central.ingester import MessageProcessor
from central.reports import format_local
from central.storage import LocalDiskStorage
from central.web import create_app
from contract.topics import event_topic, evidence_topic
from edge.config import load_camera_config
from edge.frames import Frame
from edge.pipeline import CameraAnalyzer, EventRecord
from tests.services import fake_jpeg, make_event
from tests.unit.test_first_seen import REPO, _NoDetector, bike_parks_all_afternoon, run_sidewalk, street, tracks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
__all__ = ["street"]  # the module fixture, shared with the unit test

DAYS = {"traffic": 365.0, "urban_order": 180.0, "sanitation": 90.0}


def incident_records(street: Any) -> list[EventRecord]:
    """The edge's event records (event + evidence files) of a bike parked in a sidewalk zone for
    ~6.5 minutes, as the pipeline makes them, on a wall clock that ends about now."""
    camera = load_camera_config(REPO / "configs" / "cameras" / "vn_haiphong_truccat_junction_sidewalk_vendor_elevated.yaml")
    analyzer = CameraAnalyzer("node-hp-01", camera, _NoDetector())  # type: ignore[arg-type]
    events, frames = run_sidewalk(street, bike_parks_all_afternoon, 460)
    base = utcnow() - timedelta(seconds=470)
    return [
        analyzer._record(v, Frame(image=frames[t], pts=t, wall_time=0.0, index=int(t * 2)), base + timedelta(seconds=t),
                         tracks([]))
        for t, v in events
    ]


def test_report_keeps_when_it_started_after_the_last_phase(
    central_database_url: str, tmp_path: Path, street: Any, central_users: Any, console_login: Any
) -> None:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engine = make_engine(cfg.database_url)
    sessions = make_session_factory(engine)
    processor = MessageProcessor(sessions, dialect_name=engine.dialect.name, evidence_dir=cfg.evidence_dir,
                                 topic_prefix="ioc", config=cfg)
    records = incident_records(street)
    assert [r.event.phase for r in records][0] == "start" and records[-1].event.phase == "end"
    first_seen = {next(e.sha256 for e in r.evidence if e.kind == "first_seen") for r in records}
    assert len(first_seen) == 1
    (sha,) = first_seen
    report_ids = set()
    for rec in records:  # as the node sends them: files, then the event
        e = rec.event
        for f in rec.evidence:
            assert processor.process(evidence_topic("ioc", e.node, e.camera, f.sha256), f.data).kind in (
                "evidence_stored", "evidence_duplicate")
        out = processor.process(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode())
        assert out.kind == "stored", out
        report_ids.add(out.report_id)
    assert len(report_ids) == 1  # one incident, one report
    (rid,) = report_ids
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(EvidenceRow).where(EvidenceRow.sha256 == sha)) == 1
        report = s.get(ReportRow, rid)
        assert report is not None and report.event_count == len(records)
        started = report.first_seen
    assert started == records[0].event.started_at

    # An unrelated litter event from long ago: retention has something to delete.
    old = fake_jpeg("old-litter", 3000)
    old_sha = hashlib.sha256(old).hexdigest()
    assert processor.process(evidence_topic("ioc", "n1", "c1", old_sha), old).kind == "evidence_stored"
    stale = make_event(type="littering", started_at=utcnow() - timedelta(days=100),
                       evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": old_sha, "size": 3000}])
    assert processor.process(event_topic("ioc", stale.node, stale.camera, "littering"), stale.to_json().encode()).kind == "stored"
    with sessions() as s:  # everything was received long ago, as far as the evidence table knows
        for row in s.scalars(select(EvidenceRow)):
            row.received_at = utcnow() - timedelta(days=100)
        s.commit()
    result = purge_expired_evidence(sessions, LocalDiskStorage(Path(cfg.evidence_dir)), DAYS)
    assert result.deleted == 1  # the old litter snapshot; the open incident's files stay

    client = TestClient(create_app(cfg, engine=engine))
    console_login(client, "op")
    body = client.get(f"/reports/{rid}.json").json()
    pic = body["first_seen_picture"]
    assert pic is not None and pic["sha256"] == sha and pic["available"]
    assert body["event_count"] == len(records)
    assert pic["at"]["vi"] == format_local(started, ZoneInfo("Asia/Ho_Chi_Minh"), "vi")
    served = client.get(pic["url"])
    assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == sha
    page = client.get(f"/reports/{rid}").text
    section = page[page.index('id="first-seen"') :]
    assert "Lúc bắt đầu" in section and "When it started" in section
    assert f'src="/evidence/{sha}' in section and pic["at"]["vi"] in section
    # Every phase's event names the same file.
    with sessions() as s:
        payloads = list(s.scalars(select(EventRow.payload).where(EventRow.type == "sidewalk_encroachment")))
    assert len(payloads) == len(records)
    assert all(sum(e["kind"] == "first_seen" and e["sha256"] == sha for e in p["evidence"]) == 1 for p in payloads)
    engine.dispose()
