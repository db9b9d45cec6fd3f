"""The report counts (migration 0009, central.report_counts) equal a GROUP BY over the reports after
every kind of write — ingest, review, SQL updates, a rolled-back transaction, the retention purge —
on SQLite and PostgreSQL, folded or not; and the migration fills them from reports that exist."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine

from central import report_counts
from central.auth import User
from central.config import CentralConfig
from central.db import ReportRow, make_engine, make_session_factory, migrate, session_scope, utcnow
from central.event_retention import purge_expired_events
from central.services import review
from central.services.dashboard import dashboard_data
from contract.topics import event_topic
from tests.services import create_database, drop_database, make_event
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ADMIN = User(id=1, username="admin-t", role="admin", districts=())


def _truth(engine: Engine) -> dict[tuple[Any, ...], int]:
    agency = func.coalesce(ReportRow.agency_name_vi, ReportRow.agency_code)
    with make_session_factory(engine)() as s:
        rows = s.execute(
            select(ReportRow.status, ReportRow.type, ReportRow.camera, ReportRow.ward, agency, func.count())
            .group_by(ReportRow.status, ReportRow.type, ReportRow.camera, ReportRow.ward, agency)
        ).all()
    return {tuple(r[:-1]): int(r[-1]) for r in rows}


def _counted(engine: Engine) -> dict[tuple[Any, ...], int]:
    with engine.connect() as conn:
        rows = report_counts.grouped(conn, ("status", "type", "camera", "ward", "agency"))
    return {tuple(r[:-1]): int(r[-1]) for r in rows}


def _check(engine: Engine) -> None:
    assert _counted(engine) == _truth(engine)  # deltas not folded yet
    assert report_counts.fold(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM report_count_deltas")).scalar() == 0
    assert _counted(engine) == _truth(engine)


def test_counts_follow_every_write(central_database_url: str, tmp_path: Path) -> None:
    cfg = CentralConfig.model_validate(
        {"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev"), "review": {"undo_seconds": 0}}
    )
    engine = make_engine(cfg.database_url)
    sessions = make_session_factory(engine)
    processor = ingest_processor(cfg, engine)
    try:
        ids = []
        for i, (camera, vtype) in enumerate(
            [("cam-a", "illegal_stopping"), ("cam-a", "illegal_stopping"), ("cam-b", "red_light"), ("cam-c", "littering")]
        ):
            ev = make_event(camera=camera, type=vtype, started_at=utcnow() - timedelta(days=400 if i == 0 else 1, hours=i))
            out = processor.process(event_topic("ioc", ev.node, ev.camera, ev.type.value), ev.to_json().encode())
            assert out.kind == "stored" and out.report_id
            ids.append(out.report_id)
        assert sum(_counted(engine).values()) == len(set(ids))
        _check(engine)

        review.act(sessions, cfg, ids[2], "confirm", ADMIN, None)
        review.act(sessions, cfg, ids[3], "reject", ADMIN, "not a violation")
        assert _counted(engine) == _truth(engine)
        with session_scope(sessions) as s:  # a re-labelling in SQL (a ward renamed) is counted too
            s.execute(update(ReportRow).where(ReportRow.id == ids[3]).values(ward="Phường Mới"))
            s.execute(update(ReportRow).values(last_seen=utcnow()))  # not a label: no delta
        _check(engine)

        before = _counted(engine)
        with pytest.raises(RuntimeError), session_scope(sessions) as s:
            s.execute(update(ReportRow).values(status="resolved"))
            raise RuntimeError("rolled back")
        assert _counted(engine) == before == _truth(engine)

        # The dashboard reads the counts: the same numbers as the reports.
        with sessions() as s:
            d = dashboard_data(s, __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh"))
            total = s.scalar(select(func.count()).select_from(ReportRow))
            rejected = s.scalar(select(func.count()).where(ReportRow.status == "rejected"))
            open_ = s.scalar(select(func.count()).where(ReportRow.status.not_in(("rejected", "resolved"))))
            overdue = s.scalar(
                select(func.count()).where(
                    ReportRow.status.not_in(("rejected", "resolved")), ReportRow.deadline_at < utcnow()
                )
            )
        assert d["total"] == total and d["open"] == open_ and d["overdue"] == overdue
        assert {c["key"]: c["count"] for c in d["by_status"]}.get("rejected") == rejected
        assert sum(c["count"] for c in d["by_type"]) == total
        assert [r["key"] for r in d["rejection_by_type"]][:1] == ["littering"]

        # The retention purge deletes the old report: its count goes with it.
        with session_scope(sessions) as s:
            s.execute(update(ReportRow).where(ReportRow.id == ids[0]).values(created_at=utcnow() - timedelta(days=400),
                                                                            last_seen=utcnow() - timedelta(days=400)))
        result = purge_expired_events(sessions, 365)
        assert result.reports >= 1
        _check(engine)
        assert sum(_counted(engine).values()) == len(set(ids)) - result.reports
    finally:
        engine.dispose()


def _old_report(conn: Any, camera: str, status: str, ward: str | None) -> None:
    eid = str(uuid.uuid4())
    conn.execute(
        text(
            "INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, payload, "
            "received_at, clock_suspect) VALUES (:id, 'n1', :cam, 'illegal_stopping', 'traffic', 'point', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0.9, '{}', CURRENT_TIMESTAMP, false)"
        ),
        {"id": eid, "cam": camera},
    )
    conn.execute(
        text(
            "INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, "
            "description_en, status, created_at, ward, agency_code) VALUES (:id, 'traffic', 'illegal_stopping', 'n1', "
            ":cam, 't', 't', 'd', 'd', :status, CURRENT_TIMESTAMP, :ward, 'csgt')"
        ),
        {"id": eid, "cam": camera, "status": status, "ward": ward},
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_counts_the_reports_that_exist_and_goes_back(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        name = f"test_counts_mig_{uuid.uuid4().hex[:8]}"
        url, cleanup = create_database(admin, name), (admin, name)
    try:
        migrate(url, "0008")  # the schema before the counts
        engine = make_engine(url)
        with engine.begin() as conn:
            for camera, status, ward in [("c1", "new", "W1"), ("c1", "new", "W1"), ("c2", "rejected", None)]:
                _old_report(conn, camera, status, ward)
        engine.dispose()
        migrate(url)
        engine = make_engine(url)
        assert _counted(engine) == _truth(engine) == {
            ("new", "illegal_stopping", "c1", "W1", "csgt"): 2,
            ("rejected", "illegal_stopping", "c2", None, "csgt"): 1,
        }
        with engine.begin() as conn:  # the triggers are in place after the migration
            _old_report(conn, "c3", "new", "W2")
        assert _counted(engine) == _truth(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO login_failures (key, first_at, failures, blocked_until, expires_at) "
                              "VALUES ('account:x', 1, 1, 0, 2)"))
        engine.dispose()

        from alembic import command

        from central.db import alembic_config

        engine = make_engine(url)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
        with engine.begin() as conn:  # the triggers are gone with the tables: writes still work
            _old_report(conn, "c4", "new", "W3")
            names = {r[0] for r in conn.execute(text(
                "SELECT tgname FROM pg_trigger" if backend == "postgresql" else
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            ))}
            assert not {n for n in names if n.startswith("report_counts")}
        engine.dispose()
        migrate(url)
        engine = make_engine(url)
        assert _counted(engine) == _truth(engine) and sum(_truth(engine).values()) == 5
        engine.dispose()
    finally:
        if cleanup:
            drop_database(*cleanup)
