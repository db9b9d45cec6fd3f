"""The review service (`central.services.review`) on both databases: confirm -> forward -> alert is
one chain, run once per confirmation, whether an operator confirms in the console or the
ingester's auto-review confirms a configured class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from central.config import CentralConfig
from central.db import AlertRow, ReportHistoryRow, ReportRow, make_engine, make_session_factory, session_scope
from central.ingester import MessageProcessor
from central.services import review
from central.web import create_app
from central.workflow import WorkflowError
from contract.topics import event_topic
from tests.services import make_event
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHAIN = ["confirm", "forward", "alert_queued"]


def _setup(url: str, tmp_path: Path, **extra: Any) -> tuple[CentralConfig, Engine, MessageProcessor]:
    # The chain at once: no undo window (that one is tests/integration/test_review_undo.py).
    extra["review"] = {"undo_seconds": 0, **extra.get("review", {})}
    cfg = CentralConfig.model_validate({"database_url": url, "evidence_dir": str(tmp_path / "ev"), **extra})
    engine = make_engine(cfg.database_url)
    processor = ingest_processor(cfg, engine)
    return cfg, engine, processor


def _store(processor: MessageProcessor, **overrides: Any) -> int:
    ev = make_event(**overrides)
    out = processor.process(event_topic("ioc", ev.node, ev.camera, ev.type.value), ev.to_json().encode())
    assert out.kind == "stored" and out.report_id, out
    return out.report_id


def _trail(engine: Engine, report_id: int) -> list[tuple[str, str, str | None]]:
    with make_session_factory(engine)() as s:
        rows = s.scalars(
            select(ReportHistoryRow).where(ReportHistoryRow.report_id == report_id).order_by(ReportHistoryRow.id)
        )
        # What happened after the report was opened ("created" is its first row).
        return [(h.actor, h.action, h.to_status) for h in rows if h.action != "created"]


def _alerts(engine: Engine, report_id: int) -> int:
    with make_session_factory(engine)() as s:
        return len(list(s.scalars(select(AlertRow).where(AlertRow.report_id == report_id))))


def test_confirm_in_the_console_forwards_and_alerts_once(
    central_database_url: str, central_users: Any, console_login: Any, tmp_path: Path
) -> None:
    cfg, engine, processor = _setup(central_database_url, tmp_path)
    rid = _store(processor)
    client = TestClient(create_app(cfg, engine=engine))
    csrf = console_login(client, "op")
    r = client.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json() == {"id": rid, "status": "forwarded", "undo_until": None}
    assert [a for _who, a, _to in _trail(engine, rid)] == CHAIN
    assert _trail(engine, rid)[0] == ("op", "confirm", "confirmed")
    assert _trail(engine, rid)[1] == ("system", "forward", "forwarded")
    assert _alerts(engine, rid) == 1
    # A second confirmation is refused (the report is forwarded): nothing more is forwarded or alerted.
    again = client.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409
    assert len(_trail(engine, rid)) == 3 and _alerts(engine, rid) == 1


def test_auto_review_runs_the_same_chain(central_database_url: str, tmp_path: Path) -> None:
    cfg, engine, processor = _setup(
        central_database_url, tmp_path, review={"skip_review": [{"type": "illegal_stopping", "min_confidence": 0.5}]}
    )
    rid = _store(processor, confidence=0.9)
    assert [a for _who, a, _to in _trail(engine, rid)] == CHAIN
    assert {who for who, _a, _to in _trail(engine, rid)} == {"system"}
    assert _alerts(engine, rid) == 1
    low = _store(processor, confidence=0.3, camera="other-cam")  # below the class's threshold: an operator decides
    assert _trail(engine, low) == [] and _alerts(engine, low) == 0
    # The event that grows the auto-confirmed report does not confirm or alert it again.
    grown = _store(processor, confidence=0.95)
    assert grown == rid and len(_trail(engine, rid)) == 3 and _alerts(engine, rid) == 1


def test_confirm_without_forwarding_still_alerts(central_database_url: str, tmp_path: Path) -> None:
    cfg, engine, processor = _setup(central_database_url, tmp_path, review={"forward_on_confirm": False})
    rid = _store(processor)
    sessions = make_session_factory(engine)
    from central.auth import User

    op = User(id=1, username="op", role="operator", districts=())
    report = review.act(sessions, cfg, rid, "confirm", op, None)
    assert report.status == "confirmed"
    assert [a for _who, a, _to in _trail(engine, rid)] == ["confirm", "alert_queued"] and _alerts(engine, rid) == 1
    with pytest.raises(WorkflowError) as e:
        review.act(sessions, cfg, rid, "reject", op, "  ")
    assert e.value.status == 422  # a rejection needs a reason
    with pytest.raises(WorkflowError) as e:
        review.act(sessions, cfg, rid, "reopen", op, "mistake")
    assert e.value.status == 403  # admins reopen
    with pytest.raises(WorkflowError) as e:
        review.act(sessions, cfg, 987654, "confirm", op, None)
    assert e.value.status == 404


def test_immediate_types_alert_before_review(central_database_url: str, tmp_path: Path) -> None:
    cfg, engine, processor = _setup(central_database_url, tmp_path, alerts={"immediate_types": ["wrong_way"]})
    rid = _store(processor, type="wrong_way")
    with session_scope(make_session_factory(engine)) as s:
        assert s.get(ReportRow, rid).status == "new"  # alerted, still to be reviewed
    assert [a for _who, a, _to in _trail(engine, rid)] == ["alert_queued"] and _alerts(engine, rid) == 1
    # Confirming it later forwards it, and does not alert twice.
    from central.auth import User

    review.act(make_session_factory(engine), cfg, rid, "confirm", User(1, "op", "operator", ()), None)
    assert [a for _who, a, _to in _trail(engine, rid)] == ["alert_queued", "confirm", "forward"]
    assert _alerts(engine, rid) == 1
