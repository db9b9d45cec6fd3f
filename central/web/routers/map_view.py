"""The map (page and API): cameras and open reports, ward labels; tiles only where configured."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from central import auth
from central.services.access import REVIEWERS
from central.services.map_data import map_data
from central.web.deps import Ctx, Reviewer, require

router = APIRouter()

ReviewerPage = Annotated[auth.SessionInfo, Depends(require(*REVIEWERS, page=True))]


class MapCamera(BaseModel):
    node: str
    camera: str
    name: str | None
    lat: float
    lon: float
    ward: str | None
    address: str | None
    state: str = Field(description="the camera's stream state from its health messages ('unknown': none yet)")
    healthy: bool = Field(description="streaming, not overloaded, not moved")
    camera_moved: bool
    url: str


class MapReport(BaseModel):
    id: int
    type: str
    category: str
    title_vi: str
    title_en: str
    status: str
    ward: str | None
    lat: float
    lon: float
    overdue: bool
    url: str


class MapWard(BaseModel):
    name: str
    lat: float = Field(description="centroid of the ward's cameras and open reports")
    lon: float
    open_reports: int


class MapSettings(BaseModel):
    tile_url: str | None
    attribution: str
    center: tuple[float, float]
    zoom: int
    max_zoom: int


class MapData(BaseModel):
    cameras: list[MapCamera]
    reports: list[MapReport]
    wards: list[MapWard]
    truncated: bool = Field(description="more open reports exist than the map shows (the newest are shown)")
    settings: MapSettings


def _data(ctx: Ctx) -> dict[str, Any]:
    with ctx.sessions() as s:
        data = map_data(s, ctx.config)
    m = ctx.config.map
    data["settings"] = {
        "tile_url": m.tile_url, "attribution": m.attribution, "center": m.center, "zoom": m.zoom, "max_zoom": m.max_zoom,
    }
    return data


@router.get("/api/map", tags=["map"], summary="Cameras, open reports and ward labels for the map",
            response_model=MapData)
def api_map(ctx: Ctx, _info: Reviewer) -> dict[str, Any]:
    return _data(ctx)


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def map_page(request: Request, ctx: Ctx, _info: ReviewerPage) -> HTMLResponse:
    return ctx.render(request, "map.html")
