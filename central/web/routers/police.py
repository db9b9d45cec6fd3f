"""The police view and the alerts it polls."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from central import auth, queries
from central.services.views import build_views
from central.web.deps import Ctx, require
from central.web.routers import MAX_ID
from central.web.schemas import AlertList

router = APIRouter()

POLICE_VIEW = ("police", "operator", "admin")
PolicePage = Annotated[auth.SessionInfo, Depends(require(*POLICE_VIEW, page=True))]
PoliceApi = Annotated[auth.SessionInfo, Depends(require(*POLICE_VIEW))]


@router.get(
    "/api/alerts",
    tags=["alerts"],
    summary="Police alerts after an id (the police view polls this)",
    response_model=AlertList,
)
def api_alerts(
    ctx: Ctx,
    info: PoliceApi,
    after: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    districts = info.user.districts if info.user.role == "police" else None
    with ctx.sessions() as s:
        rows = queries.alerts_after(s, after, limit, districts)
        return {"alerts": [{"id": a.id, "created_at": a.created_at.isoformat(), **a.payload} for a in rows]}


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
