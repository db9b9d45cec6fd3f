"""The watch list (admin only): a console page with its forms and the JSON API. Every change needs
the session's CSRF token and is stamped with who and when (entries are removed, never deleted)."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from central import auth
from central import watch_list as wl
from central.db import session_scope
from central.services.access import FORBIDDEN, NOT_FOUND
from central.web.deps import Csrf, Ctx, require
from central.web.routers import RowId
from central.web.schemas import WatchList, WatchListBody, WatchListEntry

router = APIRouter()

AdminPage = Annotated[auth.SessionInfo, Depends(require("admin", page=True))]
AdminApi = Annotated[auth.SessionInfo, Depends(require("admin"))]


def _admin(info: auth.SessionInfo) -> None:
    """`Csrf` checks the token for any logged-in user; the watch list is the admins'."""
    if info.user.role != "admin":
        raise HTTPException(403, FORBIDDEN)


def _when(value: str | None, tz: ZoneInfo) -> datetime | None:
    """ISO 8601; a time without a zone is local time (the console's datetime-local field)."""
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, "expires_at: not an ISO 8601 time") from None
    return (ts if ts.tzinfo else ts.replace(tzinfo=tz)).astimezone(UTC)


def _add(ctx: Ctx, info: auth.SessionInfo, plate: str, note: str, expires_at: str | None) -> dict[str, Any]:
    _admin(info)
    expires = _when(expires_at, ZoneInfo(ctx.tz))
    try:
        with session_scope(ctx.sessions) as s:
            return wl.entry_view(wl.add(s, plate, note, actor=info.user.username, expires_at=expires))
    except wl.WatchListError as e:
        raise HTTPException(422, str(e)) from None


def _remove(ctx: Ctx, info: auth.SessionInfo, entry_id: int) -> dict[str, Any]:
    _admin(info)
    with session_scope(ctx.sessions) as s:
        row = wl.remove(s, entry_id, actor=info.user.username)
        if row is None:
            raise HTTPException(404, NOT_FOUND)
        return wl.entry_view(row)


@router.get("/watch-list", response_class=HTMLResponse, include_in_schema=False)
def watch_list_page(request: Request, ctx: Ctx, _info: AdminPage, error: str | None = None) -> Response:
    with ctx.sessions() as s:
        rows = [wl.entry_view(r) for r in wl.entries(s)]
        sightings = wl.stored_sightings(s, [str(r["plate_norm"]) for r in rows])
    return ctx.render(request, "watch_list.html", entries=rows, sightings=sightings, tz=ctx.tz, error=error)


@router.post("/watch-list", include_in_schema=False)
def add_form(
    request: Request,
    ctx: Ctx,
    info: Csrf,
    plate: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=2000)],
    expires_at: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    try:
        _add(ctx, info, plate, note, expires_at)
    except HTTPException as e:
        if e.status_code != 422:
            raise
        with ctx.sessions() as s:
            rows = [wl.entry_view(r) for r in wl.entries(s)]
            sightings = wl.stored_sightings(s, [str(r["plate_norm"]) for r in rows])
        page = ctx.render(
            request,
            "watch_list.html",
            entries=rows,
            sightings=sightings,
            tz=ctx.tz,
            error=str(e.detail),
            form={"plate": plate, "note": note},
        )
        page.status_code = 422
        return page
    return RedirectResponse("/watch-list", status_code=303)


@router.post("/watch-list/{entry_id}/remove", include_in_schema=False)
def remove_form(ctx: Ctx, entry_id: RowId, info: Csrf) -> RedirectResponse:
    _remove(ctx, info, entry_id)
    return RedirectResponse("/watch-list", status_code=303)


@router.get(
    "/api/watch-list", tags=["watch list"], summary="The watch list, newest first (admin)", response_model=WatchList
)
def api_watch_list(ctx: Ctx, _info: AdminApi) -> dict[str, Any]:
    with ctx.sessions() as s:
        return {"entries": [wl.entry_view(r) for r in wl.entries(s)]}


@router.post(
    "/api/watch-list",
    tags=["watch list"],
    summary="Watch a plate: police are alerted when it is seen (admin)",
    response_model=WatchListEntry,
    status_code=201,
)
def api_add(ctx: Ctx, info: Csrf, body: WatchListBody) -> dict[str, Any]:
    return _add(ctx, info, body.plate, body.note, body.expires_at)


@router.delete(
    "/api/watch-list/{entry_id}",
    tags=["watch list"],
    summary="Stop watching a plate (admin; the entry stays, stamped removed)",
    response_model=WatchListEntry,
)
def api_remove(ctx: Ctx, entry_id: RowId, info: Csrf) -> dict[str, Any]:
    return _remove(ctx, info, entry_id)
