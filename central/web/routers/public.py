"""Published reports, anonymised (no login): the images were blurred once, when published."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from central import queries
from central.db import ReportRow
from central.services.access import NOT_FOUND
from central.services.views import public_view
from central.web.deps import Ctx
from central.web.routers import RowId
from central.web.schemas import PublicReport, PublicReportList

router = APIRouter()


@router.get(
    "/public/reports",
    tags=["public"],
    summary="Published reports (anonymised), newest first",
    response_model=PublicReportList,
    responses={200: {"content": {"text/html": {}}, "description": "HTML unless format=json"}},
)
@router.get("/public/reports/", include_in_schema=False)
def public_list(request: Request, ctx: Ctx, format: str = Query("html", pattern="^(html|json)$")) -> Any:  # noqa: A002
    with ctx.sessions() as s:
        views = [public_view(s, r, ctx.tz, ctx.share_secret) for r in queries.published_reports(s)]
    if format == "json":
        return {"reports": views}
    return ctx.render(request, "public.html", reports=views, one=None)


def _published(s: Session, report_id: int) -> ReportRow:
    report = queries.published_report(s, report_id)
    if report is None:
        raise HTTPException(404, NOT_FOUND)
    return report


@router.get(
    "/public/reports/{report_id}.json",
    tags=["public"],
    summary="One published report (anonymised)",
    response_model=PublicReport,
)
def public_json(ctx: Ctx, report_id: RowId) -> dict[str, Any]:
    with ctx.sessions() as s:
        return public_view(s, _published(s, report_id), ctx.tz, ctx.share_secret)


@router.get("/public/reports/{report_id}", include_in_schema=False)
def public_html(request: Request, ctx: Ctx, report_id: RowId) -> Response:
    with ctx.sessions() as s:
        view = public_view(s, _published(s, report_id), ctx.tz, ctx.share_secret)
    return ctx.render(request, "public.html", reports=[view], one=view)
