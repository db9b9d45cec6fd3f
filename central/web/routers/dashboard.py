"""The dashboard (page and API): counts per type, ward, status and agency, overdue, a trend over
days, and the operators' rejection rate per rule and camera (central/services/dashboard.py)."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from central import auth
from central.services.access import REVIEWERS
from central.services.dashboard import dashboard_data
from central.web.deps import Ctx, Reviewer, require

router = APIRouter()

ReviewerPage = Annotated[auth.SessionInfo, Depends(require(*REVIEWERS, page=True))]
Days = Annotated[int, Query(ge=1, le=366, description="days in the trend, today (local time) included")]


class Count(BaseModel):
    key: str | None = Field(description="the type / ward / status / agency (null: not known)")
    count: int
    vi: str
    en: str


class TrendSeries(BaseModel):
    category: str
    vi: str
    en: str
    counts: list[int] = Field(description="reports created per day, one per entry of `days`")


class Trend(BaseModel):
    days: list[str] = Field(description="local dates (YYYY-MM-DD) in the console's time zone")
    series: list[TrendSeries]


class Rejection(BaseModel):
    key: str = Field(description="violation type, or node/camera")
    decided: int = Field(description="reports an operator confirmed, forwarded, resolved or rejected")
    rejected: int
    rate: float = Field(description="rejected / decided: the field measure of false events")
    vi: str | None = None
    en: str | None = None


class Dashboard(BaseModel):
    total: int
    open: int = Field(description="not rejected or resolved")
    overdue: int = Field(description="open and past the deadline")
    by_type: list[Count]
    by_status: list[Count]
    by_ward: list[Count]
    by_agency: list[Count]
    trend: Trend
    rejection_by_type: list[Rejection]
    rejection_by_camera: list[Rejection]


def _data(ctx: Ctx, days: int) -> dict[str, Any]:
    with ctx.sessions() as s:
        return dashboard_data(s, ZoneInfo(ctx.tz), days)


@router.get("/api/dashboard", tags=["dashboard"], summary="Counts, overdue, trend and rejection rates",
            response_model=Dashboard)
def api_dashboard(ctx: Ctx, _info: Reviewer, days: Days = 14) -> dict[str, Any]:
    return _data(ctx, days)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, ctx: Ctx, _info: ReviewerPage, days: Days = 14) -> HTMLResponse:
    return ctx.render(request, "dashboard.html", d=_data(ctx, days), days=days)
