"""The police view, its live alert stream (Server-Sent Events) and the acknowledgement of alerts."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from central import auth, queries
from central.services import police_live
from central.services.views import build_views
from central.web.deps import Csrf, Ctx, require
from central.web.routers import MAX_ID, RowId
from central.web.schemas import Alert, AlertList

router = APIRouter()

POLICE_VIEW = ("police", "operator", "admin")
PolicePage = Annotated[auth.SessionInfo, Depends(require(*POLICE_VIEW, page=True))]
PoliceApi = Annotated[auth.SessionInfo, Depends(require(*POLICE_VIEW))]


@router.get(
    "/api/alerts",
    tags=["alerts"],
    summary="Police alerts after an id (the police view streams them live from /api/alerts/stream)",
    response_model=AlertList,
)
def api_alerts(
    ctx: Ctx,
    info: PoliceApi,
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    districts = police_live.districts_of(info.user)
    with ctx.sessions() as s:
        rows = queries.alerts_after(s, after, limit, districts)
        return {"alerts": [police_live.alert_view(a, ctx.tz) for a in rows]}


@router.get(
    "/api/alerts/stream",
    tags=["alerts"],
    summary="Police alerts live (text/event-stream): each event's id resumes the stream as Last-Event-ID",
    response_class=StreamingResponse,
)
def api_alert_stream(
    request: Request,
    ctx: Ctx,
    _info: PoliceApi,
    after: int | None = Query(None, ge=0, le=MAX_ID, description="resume after this alert id (else the latest)"),
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
) -> StreamingResponse:
    # An endless response only for a client that asked for one (EventSource always sends this
    # Accept); anything else gets a 406 at once instead of a request that never completes.
    if "text/event-stream" not in (accept or ""):
        raise HTTPException(406, "Accept: text/event-stream (EventSource) / chỉ dành cho EventSource")
    stream = police_live.alert_stream(
        ctx.sessions,
        request.cookies.get(auth.SESSION_COOKIE),
        ctx.tz,
        police_live.parse_last_event_id(last_event_id, after),
    )
    # no-cache and no proxy buffering: each event must reach the browser when it is written.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


@router.post(
    "/api/alerts/{alert_id}/ack",
    tags=["alerts"],
    summary="Acknowledge a police alert (police of its district, or an admin); who and when are kept and audited",
    response_model=Alert,
)
def api_alert_ack(ctx: Ctx, alert_id: RowId, info: Csrf) -> dict[str, Any]:
    return police_live.acknowledge(ctx.sessions, alert_id, info.user, ctx.tz)


@router.get("/police", response_class=HTMLResponse, include_in_schema=False)
def police_page(request: Request, ctx: Ctx, info: PolicePage) -> Response:
    with ctx.sessions() as s:
        rows = [
            r
            for r in queries.list_reports(s, info.user, queries.ReportFilter(), 50)
            if r.category == "traffic" or r.watch_alerted_at is not None  # a watch-list hit, any rule
        ]
        views = build_views(s, rows, "", ctx.tz, secret=ctx.share_secret)
    return ctx.render(request, "police.html", reports=views)
