"""The web console: server-rendered field reports, their JSON, and the evidence files.

Evidence is served only by sha256 and only when the evidence table knows it: the URL never
becomes a file path, so there is nothing to traverse.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from central import evidence as evidence_files
from central.config import CentralConfig
from central.db import EventRow, EvidenceRow, ReportRow, check_connection, make_engine, make_session_factory
from central.logs import kv
from central.reports import render_report_html, render_report_list_html, report_view
from contract.events import ViolationEvent

log = logging.getLogger(__name__)

_NOT_FOUND = "không tìm thấy / not found"


def _views(
    session: Session, rows: Sequence[tuple[ReportRow, EventRow]], base_url: str, tz: str
) -> list[dict[str, Any]]:
    events = [(r, ViolationEvent.model_validate(e.payload)) for r, e in rows]
    wanted = {ref.sha256 for _, ev in events for ref in ev.evidence}
    available = (
        set(session.scalars(select(EvidenceRow.sha256).where(EvidenceRow.sha256.in_(wanted)))) if wanted else set()
    )
    return [report_view(r, ev, available_evidence=available, base_url=base_url, tz=tz) for r, ev in events]


def create_app(
    config: CentralConfig,
    *,
    engine: Engine | None = None,
    ingester: Any | None = None,
) -> FastAPI:
    """The console app. `ingester` (optional) adds its counters and MQTT state to /healthz."""
    engine = engine or make_engine(config.database_url)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    evidence_dir = config.evidence_dir
    public_base = config.web.base_url
    tz = config.time_zone

    app = FastAPI(title="IOC central · field reports", docs_url="/api/docs", redoc_url=None)
    app.state.engine = engine
    app.state.config = config

    def _report(report_id: str, base_url: str) -> dict[str, Any]:
        if not report_id.isdigit() or len(report_id) > 18:
            raise HTTPException(404, _NOT_FOUND)
        with sessions() as s:
            row = s.execute(
                select(ReportRow, EventRow)
                .join(EventRow, EventRow.id == ReportRow.event_id)
                .where(ReportRow.id == int(report_id))
            ).first()
            if row is None:
                raise HTTPException(404, _NOT_FOUND)
            return _views(s, [(row[0], row[1])], base_url, tz)[0]

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/reports", status_code=307)

    @app.get("/reports", response_class=HTMLResponse)
    def list_reports(limit: int = Query(50, ge=1, le=500), before: int | None = Query(None, ge=1)) -> HTMLResponse:
        with sessions() as s:
            stmt = (
                select(ReportRow, EventRow)
                .join(EventRow, EventRow.id == ReportRow.event_id)
                .order_by(ReportRow.id.desc())
                .limit(limit)  # ids grow with time; pages by id
            )
            if before is not None:
                stmt = stmt.where(ReportRow.id < before)
            rows = [(r[0], r[1]) for r in s.execute(stmt)]
            views = _views(s, rows, "", tz)  # relative links: the page works under any host name
        more = f"/reports?limit={limit}&before={views[-1]['id']}" if len(views) == limit else None
        return HTMLResponse(render_report_list_html(views, more_url=more))

    # Declared before /reports/{id} so "12.json" is not taken for an id.
    @app.get("/reports/{report_id}.json")
    def report_json(report_id: str) -> JSONResponse:
        return JSONResponse(_report(report_id, public_base))

    @app.get("/reports/{report_id}", response_class=HTMLResponse)
    def report_html(report_id: str) -> HTMLResponse:
        return HTMLResponse(render_report_html(_report(report_id, "")))

    @app.get("/evidence/{sha256}")
    def get_evidence(sha256: str) -> FileResponse:
        if not evidence_files.is_sha256(sha256):
            raise HTTPException(404, _NOT_FOUND)
        with sessions() as s:
            row = s.get(EvidenceRow, sha256)
        if row is None:
            raise HTTPException(404, _NOT_FOUND)
        path = evidence_files.resolve(evidence_dir, row.path)
        if path is None or not path.is_file():
            log.warning(kv("evidence_file_missing", sha256=sha256, path=row.path))
            raise HTTPException(404, _NOT_FOUND)
        return FileResponse(
            path,
            media_type=row.media_type,
            headers={
                # Content-addressed: the bytes behind this URL can never change.
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
                "ETag": f'"{sha256}"',
            },
        )

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        body: dict[str, Any] = {"status": "ok"}
        try:
            check_connection(engine)
            body["database"] = "ok"
        except SQLAlchemyError as e:
            body.update(status="error", database=f"unreachable: {type(e).__name__}")
        if ingester is not None:
            body["mqtt"] = "connected" if ingester.connected.is_set() else "disconnected"
            body["ingester"] = ingester.counters.snapshot()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return app
