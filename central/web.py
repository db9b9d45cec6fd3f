"""The web console and API: log-in with roles, review queue, reports, exports, health, police view.

Roles: operator (reviews every report), police (traffic reports of their districts once confirmed or
alerted; may resolve them), admin (everything). Server-side sessions + per-session CSRF tokens
(`central.auth`). Evidence is served only by sha256 and only when the evidence table knows it: the
URL never becomes a file path. A sha256 is unguessable, so an evidence URL works like a capability:
it is only learned from a report its holder may read.
"""

# No `from __future__ import annotations`: FastAPI must see the Depends() closures of create_app.
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from central import auth
from central import evidence as evidence_files
from central.alerts import queue_alert
from central.config import CentralConfig
from central.db import (
    AlertRow,
    CameraHealthRow,
    EventRow,
    EvidenceRow,
    NodeStatusRow,
    ReportEventRow,
    ReportHistoryRow,
    ReportRow,
    check_connection,
    make_engine,
    make_session_factory,
    session_scope,
    utcnow,
)
from central.logs import kv
from central.reports import evidence_url, jinja_env, report_view
from central.uploads import upload_router
from central.workflow import TRANSITIONS, WorkflowError, apply_action, is_overdue, record
from contract.events import EvidenceRef, ViolationEvent

log = logging.getLogger(__name__)

_NOT_FOUND = "không tìm thấy / not found"
LOGIN_CSRF_COOKIE = "ioc_login_csrf"
POLICE_VISIBLE = ("confirmed", "forwarded", "resolved")


# ------------------------------------------------------------------------------------ filters


class ReportFilter(BaseModel):
    camera: str | None = None
    type: str | None = None
    ward: str | None = None
    district: str | None = None
    status: str | None = None
    since: datetime | None = Field(None, description="first seen at or after (ISO 8601)")
    until: datetime | None = Field(None, description="first seen before (ISO 8601)")
    overdue: bool = False

    def query_string(self) -> str:
        return urlencode({k: v for k, v in self.model_dump(mode="json").items() if v not in (None, "", False)})


def _filter_dep(
    camera: str | None = Query(None, max_length=64),
    type: str | None = Query(None, max_length=64),  # noqa: A002 - the public parameter name
    ward: str | None = Query(None, max_length=200),
    district: str | None = Query(None, max_length=200),
    status: str | None = Query(None, max_length=16),
    since: str | None = Query(None, description="ISO 8601, e.g. 2026-11-21T07:00:00+07:00"),
    until: str | None = Query(None, description="ISO 8601"),
    overdue: bool = Query(False),
) -> ReportFilter:
    def when(value: str | None, name: str) -> datetime | None:
        if not value:
            return None
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise HTTPException(422, f"{name}: not an ISO 8601 time") from None
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)

    return ReportFilter(
        camera=camera or None,
        type=type or None,
        ward=ward or None,
        district=district or None,
        status=status or None,
        since=when(since, "since"),
        until=when(until, "until"),
        overdue=overdue,
    )


def _apply_filter(stmt: Select[Any], f: ReportFilter) -> Select[Any]:
    if f.camera:
        stmt = stmt.where(ReportRow.camera == f.camera)
    if f.type:
        stmt = stmt.where(ReportRow.type == f.type)
    if f.ward:
        stmt = stmt.where(ReportRow.ward == f.ward)
    if f.district:
        stmt = stmt.where(ReportRow.district == f.district)
    if f.status:
        stmt = stmt.where(ReportRow.status == f.status)
    if f.since:
        stmt = stmt.where(ReportRow.first_seen >= f.since)
    if f.until:
        stmt = stmt.where(ReportRow.first_seen < f.until)
    if f.overdue:
        stmt = stmt.where(ReportRow.deadline_at < utcnow(), ReportRow.status.not_in(("rejected", "resolved")))
    return stmt


def _scope(stmt: Select[Any], user: auth.User) -> Select[Any]:
    """What a user may see: police only traffic reports of their districts, once confirmed or alerted."""
    if user.role != "police":
        return stmt
    return stmt.where(
        ReportRow.category == "traffic",
        ReportRow.district.in_(user.districts),
        or_(ReportRow.status.in_(POLICE_VISIBLE), ReportRow.alerted_at.is_not(None)),
    )


def can_see(user: auth.User, report: ReportRow) -> bool:
    if user.role != "police":
        return True
    return (
        report.category == "traffic"
        and user.sees_district(report.district)
        and (report.status in POLICE_VISIBLE or report.alerted_at is not None)
    )


# --------------------------------------------------------------------------------------- views


def _evidence_of(session: Session, report_ids: Sequence[int]) -> dict[int, list[EvidenceRef]]:
    """Every event's evidence per report (deduplicated by sha256), in event order."""
    out: dict[int, list[EvidenceRef]] = {rid: [] for rid in report_ids}
    if not report_ids:
        return out
    rows = session.execute(
        select(ReportEventRow.report_id, EventRow.payload)
        .join(EventRow, EventRow.id == ReportEventRow.event_id)
        .where(ReportEventRow.report_id.in_(report_ids))
        .order_by(EventRow.started_at)
    )
    seen: set[tuple[int, str]] = set()
    for rid, payload in rows:
        for e in payload.get("evidence", []):
            if (rid, e["sha256"]) not in seen:
                seen.add((rid, e["sha256"]))
                out[rid].append(EvidenceRef.model_validate(e))
    return out


def _ops(report: ReportRow, tz: str) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from central.reports import format_local

    zone = ZoneInfo(tz)

    def ts(value: datetime | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {"at": value.isoformat(), "vi": format_local(value, zone, "vi"), "en": format_local(value, zone, "en")}

    return {
        "priority": report.priority,
        "event_count": report.event_count,
        "first_seen": ts(report.first_seen),
        "last_seen": ts(report.last_seen),
        "deadline": ts(report.deadline_at),
        "overdue": is_overdue(report),
        "plate": report.plate,
        "agency": {"code": report.agency_code, "vi": report.agency_name_vi, "en": report.agency_name_en},
        "incident": report.incident,
        "published": report.published_at is not None,
        "alerted": report.alerted_at is not None,
        "allowed_actions": [],
    }


def build_views(
    session: Session,
    reports: Sequence[ReportRow],
    base_url: str,
    tz: str,
    *,
    history: bool = False,
    secret: bytes | None = None,
) -> list[dict[str, Any]]:
    best_ids = [r.best_event_id or r.event_id for r in reports]
    payloads = dict(session.execute(select(EventRow.id, EventRow.payload).where(EventRow.id.in_(best_ids))).all())
    all_evidence = _evidence_of(session, [r.id for r in reports])
    wanted = {e.sha256 for refs in all_evidence.values() for e in refs}
    available = (
        set(session.scalars(select(EvidenceRow.sha256).where(EvidenceRow.sha256.in_(wanted)))) if wanted else set()
    )
    views = []
    for report, best_id in zip(reports, best_ids, strict=True):
        best = ViolationEvent.model_validate(payloads[best_id])
        # The report shows all its events' evidence, the best event's first.
        refs = list(best.evidence) + [e for e in all_evidence[report.id] if e not in best.evidence]
        best = best.model_copy(update={"evidence": refs})
        view = report_view(report, best, available_evidence=available, base_url=base_url, tz=tz, secret=secret)
        view.update(_ops(report, tz))
        clip = next((e for e in view["evidence"] if e["kind"] == "clip" and e["available"]), None)
        view["clip_url"] = clip["url"] if clip else None
        if history:
            rows = session.scalars(
                select(ReportHistoryRow).where(ReportHistoryRow.report_id == report.id).order_by(ReportHistoryRow.id)
            )
            view["history"] = [
                {
                    "at": h.at.isoformat(),
                    "actor": h.actor,
                    "action": h.action,
                    "from_status": h.from_status,
                    "to_status": h.to_status,
                    "note": h.note,
                }
                for h in rows
            ]
        views.append(view)
    return views


# ------------------------------------------------------------------------------------- the app


class ActionBody(BaseModel):
    reason: str | None = Field(None, max_length=2000, description="required to reject or reopen")


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
    env = jinja_env()
    with session_scope(sessions) as s:
        share_secret = auth.share_secret(s, config.auth.share_link_secret)

    app = FastAPI(
        title="IOC central · field reports",
        description="Field reports from the city's cameras: review workflow, exports, police alerts. "
        "JSON endpoints live under /api; state-changing requests need the session cookie and its "
        "CSRF token (header X-CSRF-Token).",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.engine = engine
    app.state.config = config
    app.include_router(upload_router(config, sessions, dialect_name=engine.dialect.name))  # edge evidence upload

    # -------------------------------------------------------------------------- session helpers

    def current(request: Request) -> auth.SessionInfo | None:
        if not hasattr(request.state, "session_info"):
            with session_scope(sessions) as s:
                request.state.session_info = auth.load_session(s, request.cookies.get(auth.SESSION_COOKIE))
        return request.state.session_info

    def need_user(request: Request) -> auth.SessionInfo:
        info = current(request)
        if info is None:
            raise HTTPException(401, "đăng nhập trước / log in first")
        return info

    def need_roles(*roles: str) -> Any:
        def dep(info: Annotated[auth.SessionInfo, Depends(need_user)]) -> auth.SessionInfo:
            if info.user.role not in roles:
                raise HTTPException(403, "không có quyền / forbidden for this role")
            return info

        return dep

    async def check_csrf(request: Request, info: Annotated[auth.SessionInfo, Depends(need_user)]) -> auth.SessionInfo:
        given = request.headers.get(auth.CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            given = str((await request.form()).get(auth.CSRF_FIELD) or "")
        if not auth.csrf_ok(info.csrf, given):
            raise HTTPException(403, "CSRF token missing or wrong")
        return info

    def page(request: Request, name: str, **ctx: Any) -> HTMLResponse:
        info = current(request)
        html = env.get_template(name).render(
            user=info.user if info else None, csrf=info.csrf if info else "", request_path=request.url.path, **ctx
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    def load_report(s: Session, report_id: int, user: auth.User | None) -> ReportRow:
        report = s.get(ReportRow, report_id)
        # Police asking for another district's report get the same 404 as for a missing one.
        if report is None or (user is not None and not can_see(user, report)):
            raise HTTPException(404, _NOT_FOUND)
        return report

    def allowed(user: auth.User, report: ReportRow) -> list[str]:
        if not can_see(user, report):
            return []
        return [a for a, t in TRANSITIONS.items() if user.role in t.roles and report.status in t.source]

    def list_reports(s: Session, user: auth.User, f: ReportFilter, limit: int, before: int | None) -> list[ReportRow]:
        stmt = _scope(_apply_filter(select(ReportRow), f), user).order_by(ReportRow.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(ReportRow.id < before)
        return list(s.scalars(stmt))

    def do_action(report_id: int, action: str, info: auth.SessionInfo, reason: str | None) -> ReportRow:
        with session_scope(sessions) as s:
            report = load_report(s, report_id, info.user)
            try:
                apply_action(s, report, action, actor=info.user.username, role=info.user.role, reason=reason)
            except WorkflowError as e:
                raise HTTPException(e.status, str(e)) from None
            if action == "confirm":
                if config.review.forward_on_confirm:
                    record(s, report, actor="system", action="forward", to_status="forwarded", note=report.agency_code)
                queue_alert(s, report, config, actor=info.user.username)
            log.info(
                kv("report_action", report=report_id, action=action, actor=info.user.username, status=report.status)
            )
            return report

    # ----------------------------------------------------------------------------- log in / out

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/queue", error: str | None = None) -> HTMLResponse:  # noqa: A002
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html", next=_safe_next(next), error=error, login_csrf=token)
        # Double-submit token: a foreign site cannot log the browser in to an account of its choosing.
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=config.auth.cookie_secure)
        return resp

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/queue",  # noqa: A002
    ) -> Response:
        if not auth.csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
            raise HTTPException(403, "CSRF token missing or wrong")
        with session_scope(sessions) as s:
            user = auth.authenticate(s, username, password)
            if user is None:
                log.warning(kv("login_failed", username=username))
                return RedirectResponse(f"/login?error=1&next={quote(_safe_next(next))}", status_code=303)
            token, _csrf = auth.start_session(s, user, config.auth.session_hours)
        log.info(kv("login", username=user.username, role=user.role))
        target = _safe_next(next)
        if user.role == "police" and target in ("/queue", "/"):
            target = "/police"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(
            auth.SESSION_COOKIE,
            token,
            max_age=int(config.auth.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=config.auth.cookie_secure,
        )
        resp.delete_cookie(LOGIN_CSRF_COOKIE)
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, _info: Annotated[auth.SessionInfo, Depends(check_csrf)]) -> Response:
        with session_scope(sessions) as s:
            auth.end_session(s, request.cookies.get(auth.SESSION_COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(auth.SESSION_COOKIE)
        return resp

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        info = current(request)
        if info is None:
            return RedirectResponse("/reports", status_code=307)
        return RedirectResponse("/police" if info.user.role == "police" else "/queue", status_code=307)

    # --------------------------------------------------------------------------------- pages

    @app.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports_page(
        request: Request,
        f: Annotated[ReportFilter, Depends(_filter_dep)],
        limit: int = Query(50, ge=1, le=500),
        before: int | None = Query(None, ge=1),
    ) -> Response:
        info = current(request)
        if info is None:
            return login_redirect(request)
        with sessions() as s:
            rows = list_reports(s, info.user, f, limit, before)
            views = build_views(s, rows, "", tz, secret=share_secret)  # relative links: the page works under any host name
        more = f"/reports?{f.query_string()}&limit={limit}&before={views[-1]['id']}" if len(views) == limit else None
        return page(request, "reports.html", reports=views, more_url=more, f=f, qs=f.query_string())

    @app.get("/queue", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(request: Request, f: Annotated[ReportFilter, Depends(_filter_dep)]) -> Response:
        info = current(request)
        if info is None:
            return login_redirect(request)
        if info.user.role not in ("operator", "admin"):
            raise HTTPException(403, "không có quyền / forbidden for this role")
        with sessions() as s:
            views = build_views(s, review_queue(s, f), "", tz, secret=share_secret)
        return page(request, "queue.html", reports=views, f=f)

    def review_queue(s: Session, f: ReportFilter, limit: int = 100) -> list[ReportRow]:
        f = f.model_copy(update={"status": f.status or "new"})
        urgent_first = (ReportRow.priority == "urgent").desc()
        return list(
            s.scalars(
                _apply_filter(select(ReportRow), f)
                .order_by(urgent_first, ReportRow.first_seen, ReportRow.id)
                .limit(limit)
            )
        )

    def report_page_view(s: Session, report: ReportRow, user: auth.User | None, base: str) -> dict[str, Any]:
        view = build_views(s, [report], base, tz, history=True, secret=share_secret)[0]
        view["allowed_actions"] = allowed(user, report) if user else []
        return view

    def resolve_ref(request: Request, ref: str) -> tuple[int, auth.User | None]:
        """`<id>` (needs a session) or `<id>-<signature>` (a share link, read-only)."""
        if ref.isdigit() and len(ref) <= 18:
            info = current(request)
            if info is None:
                raise HTTPException(401, "đăng nhập trước / log in first")
            return int(ref), info.user
        rid = auth.check_share_ref(share_secret, ref)
        if rid is None:
            raise HTTPException(404, _NOT_FOUND)
        return rid, None

    # Declared before /reports/{ref} so "12.json" is not taken for a ref.
    @app.get("/reports.csv", tags=["reports"], summary="Export the filtered list as CSV")
    def reports_csv(
        info: Annotated[auth.SessionInfo, Depends(need_user)],
        f: Annotated[ReportFilter, Depends(_filter_dep)],
        limit: int = Query(5000, ge=1, le=50000),
    ) -> Response:
        from central.export import reports_csv as to_csv

        with sessions() as s:
            rows = list_reports(s, info.user, f, limit, None)
            views = build_views(s, rows, public_base, tz, secret=share_secret)
        name = f"phan-anh-{utcnow():%Y%m%d-%H%M%S}.csv"
        return Response(
            to_csv(views),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/reports/{ref}.json", tags=["reports"], summary="One report (session or share link)")
    def report_json(request: Request, ref: str) -> JSONResponse:
        rid, user = resolve_ref(request, ref)
        with sessions() as s:
            return JSONResponse(report_page_view(s, load_report(s, rid, user), user, public_base))

    @app.get("/reports/{ref}.pdf", tags=["reports"], summary="One report as PDF")
    def report_pdf(request: Request, ref: str) -> Response:
        from central.export import report_pdf as to_pdf

        rid, user = resolve_ref(request, ref)
        with sessions() as s:
            view = report_page_view(s, load_report(s, rid, user), user, public_base)
        return Response(
            to_pdf(view, evidence_path=lambda sha: _evidence_path(sha)),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="phan-anh-{rid}.pdf"'},
        )

    @app.get("/reports/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def report_html(request: Request, ref: str) -> Response:
        if ref.isdigit() and current(request) is None:
            return login_redirect(request)
        rid, user = resolve_ref(request, ref)
        with sessions() as s:
            view = report_page_view(s, load_report(s, rid, user), user, "")
        return page(request, "report.html", r=view, ref=ref)

    @app.post("/reports/{report_id}/actions/{action}", include_in_schema=False)
    def report_action_form(
        report_id: int,
        action: str,
        info: Annotated[auth.SessionInfo, Depends(check_csrf)],
        reason: Annotated[str | None, Form(max_length=2000)] = None,
        next: Annotated[str | None, Form(max_length=2000)] = None,  # noqa: A002
    ) -> RedirectResponse:
        do_action(report_id, action, info, reason)
        return RedirectResponse(_safe_next(next or f"/reports/{report_id}"), status_code=303)

    # ------------------------------------------------------------------------------------ API

    @app.get("/api/reports", tags=["reports"], summary="Reports the caller may see, newest first")
    def api_reports(
        info: Annotated[auth.SessionInfo, Depends(need_user)],
        f: Annotated[ReportFilter, Depends(_filter_dep)],
        limit: int = Query(50, ge=1, le=500),
        before: int | None = Query(None, ge=1),
    ) -> JSONResponse:
        with sessions() as s:
            rows = list_reports(s, info.user, f, limit, before)
            return JSONResponse({"reports": build_views(s, rows, public_base, tz, secret=share_secret)})

    @app.get("/api/queue", tags=["review"], summary="The review queue: urgent first, then oldest")
    def api_queue(
        _info: Annotated[auth.SessionInfo, Depends(need_roles("operator", "admin"))],
        f: Annotated[ReportFilter, Depends(_filter_dep)],
    ) -> JSONResponse:
        with sessions() as s:
            return JSONResponse({"reports": build_views(s, review_queue(s, f), public_base, tz, secret=share_secret)})

    @app.get("/api/reports/{report_id}", tags=["reports"], summary="One report with its audit trail")
    def api_report(report_id: int, info: Annotated[auth.SessionInfo, Depends(need_user)]) -> JSONResponse:
        with sessions() as s:
            return JSONResponse(report_page_view(s, load_report(s, report_id, info.user), info.user, public_base))

    @app.post(
        "/api/reports/{report_id}/{action}",
        tags=["review"],
        summary="confirm | reject | forward | resolve | reopen (reason needed to reject and reopen)",
    )
    def api_action(
        report_id: int,
        action: str,
        info: Annotated[auth.SessionInfo, Depends(check_csrf)],
        body: ActionBody | None = None,
    ) -> JSONResponse:
        if action == "publish":
            return JSONResponse(publish(report_id, info))
        report = do_action(report_id, action, info, body.reason if body else None)
        return JSONResponse({"id": report.id, "status": report.status})

    @app.get("/api/me", tags=["session"], summary="Who is logged in, and the CSRF token to send back")
    def api_me(info: Annotated[auth.SessionInfo, Depends(need_user)]) -> JSONResponse:
        u = info.user
        return JSONResponse({"username": u.username, "role": u.role, "districts": list(u.districts), "csrf": info.csrf})

    @app.get("/api/alerts", tags=["alerts"], summary="Police alerts after an id (the police view polls this)")
    def api_alerts(
        info: Annotated[auth.SessionInfo, Depends(need_roles("police", "operator", "admin"))],
        after: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=500),
    ) -> JSONResponse:
        with sessions() as s:
            stmt = select(AlertRow).where(AlertRow.id > after).order_by(AlertRow.id).limit(limit)
            if info.user.role == "police":
                stmt = stmt.where(AlertRow.district.in_(info.user.districts))
            alerts = [{"id": a.id, "created_at": a.created_at.isoformat(), **a.payload} for a in s.scalars(stmt)]
        return JSONResponse({"alerts": alerts})

    @app.get("/police", response_class=HTMLResponse, include_in_schema=False)
    def police_page(request: Request) -> Response:
        info = current(request)
        if info is None:
            return login_redirect(request)
        if info.user.role not in ("police", "operator", "admin"):
            raise HTTPException(403, "không có quyền / forbidden for this role")
        with sessions() as s:
            f = ReportFilter()
            rows = list_reports(s, info.user, f, 50, None)
            rows = [r for r in rows if r.category == "traffic"]
            views = build_views(s, rows, "", tz, secret=share_secret)
        return page(request, "police.html", reports=views)

    # --------------------------------------------------------------------------------- health

    def health_data(s: Session) -> dict[str, Any]:
        now = utcnow()
        last_event = {
            (n, c): t
            for n, c, t in s.execute(
                select(EventRow.node, EventRow.camera, func.max(EventRow.started_at)).group_by(
                    EventRow.node, EventRow.camera
                )
            )
        }
        nodes = []
        for row in s.scalars(select(NodeStatusRow).order_by(NodeStatusRow.node)):
            p = row.payload if isinstance(row.payload, dict) else {"state": str(row.payload)}
            age = (now - row.updated_at).total_seconds()
            state = p.get("state", "unknown")
            online = state == "online" and age < 120  # a node reports every 10 s; 2 min of silence = gone
            nodes.append(
                {
                    "node": row.node,
                    "state": state,
                    "online": online,
                    "updated_at": row.updated_at.isoformat(),
                    "age_s": round(age),
                    "outbox_backlog": p.get("outbox_backlog"),
                    "outbox_oldest_s": p.get("outbox_oldest_s"),
                    "uptime_s": p.get("uptime_s"),
                }
            )
        cameras = []
        for row in s.scalars(select(CameraHealthRow).order_by(CameraHealthRow.node, CameraHealthRow.camera)):
            p = row.payload if isinstance(row.payload, dict) else {"state": str(row.payload)}
            last = last_event.get((row.node, row.camera))
            cameras.append(
                {
                    "node": row.node,
                    "camera": row.camera,
                    "state": p.get("state", "unknown"),
                    "fps": p.get("fps") or p.get("analysis_fps"),
                    "updated_at": row.updated_at.isoformat(),
                    "last_event_at": last.isoformat() if last else None,
                }
            )
        known = {(c["node"], c["camera"]) for c in cameras}
        for (n, c), t in sorted(last_event.items()):
            if (n, c) not in known:
                cameras.append(
                    {
                        "node": n,
                        "camera": c,
                        "state": "unknown",
                        "fps": None,
                        "updated_at": None,
                        "last_event_at": t.isoformat(),
                    }
                )
        return {"nodes": nodes, "cameras": cameras, "at": now.isoformat()}

    @app.get("/api/health", tags=["health"], summary="Nodes (online/offline, outbox backlog) and cameras (last event)")
    def api_health(_info: Annotated[auth.SessionInfo, Depends(need_roles("operator", "admin"))]) -> JSONResponse:
        with sessions() as s:
            return JSONResponse(health_data(s))

    @app.get("/health", response_class=HTMLResponse, include_in_schema=False)
    def health_page(request: Request) -> Response:
        info = current(request)
        if info is None:
            return login_redirect(request)
        if info.user.role not in ("operator", "admin"):
            raise HTTPException(403, "không có quyền / forbidden for this role")
        with sessions() as s:
            data = health_data(s)
        return page(request, "health.html", **data)

    # ------------------------------------------------------------------------------ publishing

    def publish(report_id: int, info: auth.SessionInfo) -> dict[str, Any]:
        if info.user.role not in ("operator", "admin"):
            raise HTTPException(403, "không có quyền / forbidden for this role")
        from central.public import PublicBlurrer

        with sessions() as s:
            report = load_report(s, report_id, info.user)
            if report.status not in ("confirmed", "forwarded", "resolved"):
                raise HTTPException(409, "only a confirmed report can be published")
            view = build_views(s, [report], "", tz, secret=share_secret)[0]
        images = [e for e in view["evidence"] if e["kind"] in ("snapshot", "snapshot_clean") and e["available"]]
        blurrer = PublicBlurrer.shared(config)
        public: list[dict[str, Any]] = []
        for e in images:
            path = _evidence_path(e["sha256"])
            if path is None:
                continue
            data, counts = blurrer.blur_jpeg(path.read_bytes())
            sha = evidence_files.sha256_hex(data)
            rel, _ = evidence_files.store(evidence_dir, sha, data)
            public.append({"kind": e["kind"], "source": e["sha256"], "sha256": sha, "size": len(data), **counts})
            with session_scope(sessions) as s:
                if s.get(EvidenceRow, sha) is None:
                    s.add(
                        EvidenceRow(sha256=sha, media_type="image/jpeg", size=len(data), path=rel, received_at=utcnow())
                    )
        with session_scope(sessions) as s:
            report = load_report(s, report_id, info.user)
            report.public_evidence = public
            report.published_at = utcnow()
            record(s, report, actor=info.user.username, action="publish", note=f"{len(public)} image(s) blurred")
        return {"id": report_id, "published": True, "evidence": public}

    @app.post("/reports/{report_id}/publish", include_in_schema=False)
    def publish_form(report_id: int, info: Annotated[auth.SessionInfo, Depends(check_csrf)]) -> RedirectResponse:
        publish(report_id, info)
        return RedirectResponse(f"/reports/{report_id}", status_code=303)

    def public_view(s: Session, report: ReportRow) -> dict[str, Any]:
        v = build_views(s, [report], "", tz, secret=share_secret)[0]
        blurred = report.public_evidence or []
        # Nothing that identifies anyone: no plate text, no objects, no original evidence.
        return {
            "id": report.id,
            "title": v["title"],
            "category": v["category"],
            "status": v["status"],
            "place": {k: v["place"][k] for k in ("ward", "district", "address", "lat", "lon", "text")},
            "time": v["time"],
            "first_seen": v["first_seen"],
            "event_count": v["event_count"],
            "agency": v["agency"],
            "images": [
                {"kind": b["kind"], "url": evidence_url("", b["sha256"], share_secret), "sha256": b["sha256"]}
                for b in blurred
            ],
            "published_at": report.published_at.isoformat() if report.published_at else None,
        }

    @app.get("/public/reports", tags=["public"], summary="Published reports (anonymised), newest first")
    @app.get("/public/reports/", include_in_schema=False)
    def public_list(request: Request, format: str = Query("html", pattern="^(html|json)$")) -> Response:  # noqa: A002
        with sessions() as s:
            rows = s.scalars(
                select(ReportRow)
                .where(ReportRow.published_at.is_not(None))
                .order_by(ReportRow.published_at.desc())
                .limit(100)
            )
            views = [public_view(s, r) for r in rows]
        if format == "json":
            return JSONResponse({"reports": views})
        return page(request, "public.html", reports=views, one=None)

    @app.get("/public/reports/{report_id}.json", tags=["public"], summary="One published report (anonymised)")
    def public_json(report_id: int) -> JSONResponse:
        with sessions() as s:
            report = s.get(ReportRow, report_id)
            if report is None or report.published_at is None:
                raise HTTPException(404, _NOT_FOUND)
            return JSONResponse(public_view(s, report))

    @app.get("/public/reports/{report_id}", response_class=HTMLResponse, include_in_schema=False)
    def public_html(request: Request, report_id: int) -> Response:
        with sessions() as s:
            report = s.get(ReportRow, report_id)
            if report is None or report.published_at is None:
                raise HTTPException(404, _NOT_FOUND)
            view = public_view(s, report)
        return page(request, "public.html", reports=[view], one=view)

    # ------------------------------------------------------------------------------- evidence

    def _evidence_path(sha256: str) -> Any:
        if not evidence_files.is_sha256(sha256):
            return None
        with sessions() as s:
            row = s.get(EvidenceRow, sha256)
        if row is None:
            return None
        path = evidence_files.resolve(evidence_dir, row.path)
        return path if path is not None and path.is_file() else None

    @app.get("/evidence/{sha256}", tags=["evidence"], summary="An evidence file by its sha256")
    def get_evidence(request: Request, sha256: str, t: str | None = None) -> FileResponse:
        """Served with the signed token that report views carry (`?t=`), or to a logged-in operator
        or admin. A hash alone (it travels in events over MQTT) opens nothing."""
        if not evidence_files.is_sha256(sha256):
            raise HTTPException(404, _NOT_FOUND)
        if not auth.check_evidence_token(share_secret, sha256, t):
            with sessions() as s:
                info = auth.load_session(s, request.cookies.get(auth.SESSION_COOKIE))
            if info is None or info.user.role not in ("operator", "admin"):
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

    @app.get("/healthz", tags=["health"], summary="Liveness: database and MQTT")
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

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
        if exc.status_code == 401 and wants_html and request.method == "GET":
            return login_redirect(request)
        if wants_html:
            html = env.get_template("error.html").render(
                user=None, csrf="", request_path=request.url.path, status=exc.status_code, detail=exc.detail
            )
            return HTMLResponse(html, status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    return app


def _safe_next(target: str | None) -> str:
    """Only same-site paths: `next=https://evil.example` must not turn the login into a redirector."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target
