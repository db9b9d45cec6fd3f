"""Reports: the list page, one report (HTML, JSON, PDF; by session or share link), CSV export, the API."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from central import auth, queries
from central.db import UserRow, utcnow
from central.logs import kv
from central.services.access import NOT_FOUND, load_visible
from central.services.views import build_views, report_detail
from central.storage import open_evidence_storage
from central.web.deps import LOGIN_FIRST, Ctx, Filter, User, current, login_redirect, require
from central.web.routers import MAX_ID, RowId
from central.web.schemas import ReportDetail, ReportList

log = logging.getLogger("central.web")
router = APIRouter()

Page = Annotated[auth.SessionInfo, Depends(require(page=True))]


def resolve_ref(request: Request, ctx: Ctx, ref: str) -> tuple[int, auth.User | None]:
    """`<id>` (needs a session) or `<id>-<issued>-<signature>` (a share link, read-only, until it
    expires or is revoked)."""
    # isascii: '²'.isdigit() is True but int('²') raises (a 500 before).
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        info = current(request)
        if info is None:
            raise HTTPException(401, LOGIN_FIRST)
        return int(ref), info.user
    parsed = auth.parse_share_ref(ctx.share_secret, ref)
    if parsed is None:
        raise HTTPException(404, NOT_FOUND)
    rid, issued = parsed
    with ctx.sessions() as s:
        revoked = auth.revoked_before(s, rid)
    if not auth.share_ref_live(issued, max_age_s=ctx.config.auth.share_link_days * 86400, revoked=revoked):
        raise HTTPException(404, NOT_FOUND)  # expired or revoked: no oracle telling which
    return rid, None


ROLE_LABELS = {"operator": "IOC operator", "admin": "IOC administrator", "police": "police officer"}


def _detail(s: Session, rid: int, user: auth.User | None, base: str, ctx: Any) -> dict[str, Any]:
    """The report's view; through a share link (no user) the audit trail names roles, not people
    (issue 18, defect 10: a share link travels by e-mail and chat, staff names must not)."""
    view = report_detail(s, load_visible(s, rid, user), user, base, ctx.tz, ctx.share_secret)
    if user is None:
        actors = {h["actor"] for h in view.get("history", [])}
        rows = s.execute(select(UserRow.username, UserRow.role).where(UserRow.username.in_(actors)))
        roles = {name: role for name, role in rows}
        for h in view.get("history", []):
            h["actor"] = ROLE_LABELS.get(roles.get(h["actor"], ""), "system")
    return view


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
def reports_page(
    request: Request,
    ctx: Ctx,
    f: Filter,
    info: Page,
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    with ctx.sessions() as s:
        # One more than the page: a "next" link only when there is a next page.
        rows = queries.list_reports(s, info.user, f, limit + 1, before)
        has_more, rows = len(rows) > limit, rows[:limit]
        total = queries.count_reports(s, info.user, f)
        views = build_views(s, rows, "", ctx.tz, secret=ctx.share_secret)  # relative links: any host name
    qs = f.query_string()
    more = f"/reports?{qs + '&' if qs else ''}limit={limit}&before={views[-1]['id']}" if has_more else None
    return ctx.render(
        request,
        "reports.html",
        reports=views,
        more_url=more,
        first_url=f"/reports?{qs}" if before is not None else None,
        total=total,
        total_capped=total > queries.COUNT_CAP,
        filtered=bool(qs),
        f=f,
        qs=qs,
    )


# Declared before /reports/{ref} so "12.json" is not taken for a ref.
@router.get(
    "/reports.csv",
    tags=["reports"],
    summary="Export the filtered list as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per report"}},
)
def reports_csv(ctx: Ctx, info: User, f: Filter, limit: int = Query(5000, ge=1, le=50000)) -> Response:
    from central.export import reports_csv as to_csv

    with ctx.sessions() as s:
        rows = queries.list_reports(s, info.user, f, limit, None)
        views = build_views(s, rows, ctx.public_base, ctx.tz, secret=ctx.share_secret)
    # The file is named for the local time it was made (an operator files exports by date).
    name = f"phan-anh-{utcnow().astimezone(ZoneInfo(ctx.tz)):%Y%m%d-%H%M%S}.csv"
    return Response(
        to_csv(views, ctx.tz),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/reports/{ref}.json", tags=["reports"], summary="One report (session or share link)", response_model=ReportDetail
)
def report_json(request: Request, ctx: Ctx, ref: str) -> dict[str, Any]:
    rid, user = resolve_ref(request, ctx, ref)
    with ctx.sessions() as s:
        return _detail(s, rid, user, ctx.public_base, ctx)


@router.get(
    "/reports/{ref}.pdf",
    tags=["reports"],
    summary="One report as PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def report_pdf(
    request: Request,
    ctx: Ctx,
    ref: str,
    lang: Literal["vi", "en"] = Query("vi", description="the record's language: vi, or en for the English version"),
) -> Response:
    from central.export import report_pdf as to_pdf

    rid, user = resolve_ref(request, ctx, ref)
    with ctx.sessions() as s:
        view = _detail(s, rid, user, ctx.public_base, ctx)

    storage = open_evidence_storage(ctx.config)

    def evidence_path(sha256: str) -> Path | None:
        with ctx.sessions() as s:
            found = queries.evidence_file(s, storage, sha256)
        if found is None or found[1] is None:
            return None
        key = found[1]
        path = storage.local_path(key)
        if path is not None:
            return path
        # An object store: the PDF renderer reads a file, so the picture (a few hundred kB)
        # goes to a temp file for the length of this request.
        copy = Path(tmp) / sha256
        copy.write_bytes(storage.read_bytes(key))
        return copy

    with tempfile.TemporaryDirectory(prefix="ioc-pdf-") as tmp:
        try:
            pdf = to_pdf(view, evidence_path=evidence_path, lang=lang)
        except OSError as e:  # the object store does not answer: no PDF without its picture
            log.error(kv("evidence_store_failing", report=rid, error=type(e).__name__, detail=str(e)[:200]))
            raise HTTPException(503, "evidence store unavailable", headers={"Retry-After": "30"}) from None
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{"phan-anh" if lang == "vi" else "report"}-{rid}.pdf"'},
    )


@router.get("/reports/{ref}", response_class=HTMLResponse, include_in_schema=False)
def report_html(request: Request, ctx: Ctx, ref: str) -> Response:
    if ref.isdigit() and current(request) is None:
        return login_redirect(request)
    rid, user = resolve_ref(request, ctx, ref)
    with ctx.sessions() as s:
        view = _detail(s, rid, user, "", ctx)
    return ctx.render(request, "report.html", r=view, ref=ref)


@router.get(
    "/api/reports", tags=["reports"], summary="Reports the caller may see, newest first", response_model=ReportList
)
def api_reports(
    ctx: Ctx,
    info: User,
    f: Filter,
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> dict[str, Any]:
    with ctx.sessions() as s:
        rows = queries.list_reports(s, info.user, f, limit, before)
        return {"reports": build_views(s, rows, ctx.public_base, ctx.tz, secret=ctx.share_secret)}


@router.get(
    "/api/reports/{report_id}",
    tags=["reports"],
    summary="One report with its audit trail",
    response_model=ReportDetail,
)
def api_report(ctx: Ctx, report_id: RowId, info: User) -> dict[str, Any]:
    with ctx.sessions() as s:
        report = load_visible(s, report_id, info.user)
        return report_detail(s, report, info.user, ctx.public_base, ctx.tz, ctx.share_secret)


# The watch list's routes (central.web.routers.watch_list) ride on this router: they answer searches
# by plate from the same console, and the app includes the routers listed in central.web.app.
from central.web.routers import watch_list as _watch_list  # noqa: E402

router.include_router(_watch_list.router)
