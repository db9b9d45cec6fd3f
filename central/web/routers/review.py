"""The review queue and the review actions (console forms and API), publishing."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from central import auth, queries
from central.db import ReportRow, session_scope
from central.logs import kv
from central.services import review
from central.services.access import FORBIDDEN, NOT_FOUND, REVIEWERS
from central.services.views import build_views
from central.web.deps import Csrf, Ctx, Filter, Reviewer, require, safe_next
from central.web.routers import MAX_ID, RowId
from central.web.schemas import ActionBody, ActionResult, BulkBody, BulkResult, PublishResult, ReportList
from central.workflow import record

router = APIRouter()
log = logging.getLogger("central.web")


class RevokeResult(BaseModel):
    revoked: bool
    report: int | None
    revoked_at: int


ReviewerPage = Annotated[auth.SessionInfo, Depends(require(*REVIEWERS, page=True))]


@router.get("/queue", response_class=HTMLResponse, include_in_schema=False)
def queue_page(
    request: Request,
    ctx: Ctx,
    f: Filter,
    _info: ReviewerPage,
    undo: int | None = Query(None, ge=1, le=MAX_ID),
    done: int | None = Query(None, ge=0, le=1000),
) -> Response:
    with ctx.sessions() as s:
        views = build_views(s, queries.review_queue(s, f), "", ctx.tz, secret=ctx.share_secret)
        # The confirmation just made, while it can still be undone ("Confirmed — Undo (10 s)").
        just = s.get(ReportRow, undo) if undo is not None else None
        pending = build_views(s, [just], "", ctx.tz, secret=ctx.share_secret)[0] if just is not None else None
    if pending is not None and not pending["undo_until"]:
        pending = None
    return ctx.render(request, "queue.html", reports=views, f=f, undo=pending, bulk_done=done)


def _with_query(target: str, key: str, value: int) -> str:
    return f"{target}{'&' if '?' in target else '?'}{key}={value}"


@router.get(
    "/api/queue", tags=["review"], summary="The review queue: urgent first, then oldest", response_model=ReportList
)
def api_queue(ctx: Ctx, _info: Reviewer, f: Filter) -> dict[str, Any]:
    with ctx.sessions() as s:
        return {"reports": build_views(s, queries.review_queue(s, f), ctx.public_base, ctx.tz, secret=ctx.share_secret)}


@router.post("/reports/{report_id}/actions/{action}", include_in_schema=False)
def report_action_form(
    ctx: Ctx,
    report_id: RowId,
    action: str,
    info: Csrf,
    reason: Annotated[str | None, Form(max_length=2000)] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,  # noqa: A002
) -> RedirectResponse:
    report = review.act(ctx.sessions, ctx.config, report_id, action, info.user, reason)
    target = safe_next(next or f"/reports/{report_id}")
    if report.forward_after is not None:
        target = _with_query(target, "undo", report_id)  # the page says "Confirmed — Undo"
    return RedirectResponse(target, status_code=303)


@router.post("/reports/bulk", include_in_schema=False)
def bulk_form(
    ctx: Ctx,
    info: Csrf,
    action: Annotated[str, Form(max_length=16)],
    ids: Annotated[list[int], Form()],
    reason: Annotated[str | None, Form(max_length=2000)] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,  # noqa: A002
) -> RedirectResponse:
    results = review.bulk_act(ctx.sessions, ctx.config, ids[:200], action, info.user, reason)
    done = sum(1 for r in results if r["ok"])
    return RedirectResponse(_with_query(safe_next(next or "/queue"), "done", done), status_code=303)


@router.post(
    "/api/reports/bulk",
    tags=["review"],
    summary="Confirm or reject several reports with one reason (each checked and audited on its own)",
    response_model=BulkResult,
)
def api_bulk(ctx: Ctx, info: Csrf, body: BulkBody) -> dict[str, Any]:
    return {"results": review.bulk_act(ctx.sessions, ctx.config, body.ids, body.action, info.user, body.reason)}


@router.post(
    "/api/reports/{report_id}/{action}",
    tags=["review"],
    summary="confirm | reject | forward | resolve | reopen | publish | unpublish (reason needed to reject and reopen)",
    response_model=ActionResult | PublishResult,
)
def api_action(
    ctx: Ctx, report_id: RowId, action: str, info: Csrf, body: ActionBody | None = None
) -> ActionResult | PublishResult | dict[str, Any]:
    if action == "publish":
        return review.publish(ctx.sessions, ctx.config, report_id, info.user, secret=ctx.share_secret)
    if action == "unpublish":
        return review.unpublish(ctx.sessions, report_id, info.user)
    report = review.act(ctx.sessions, ctx.config, report_id, action, info.user, body.reason if body else None)
    until = report.forward_after.isoformat() if report.forward_after is not None else None
    return ActionResult(id=report.id, status=report.status, undo_until=until)


@router.post("/reports/{report_id}/publish", include_in_schema=False)
def publish_form(ctx: Ctx, report_id: RowId, info: Csrf) -> RedirectResponse:
    review.publish(ctx.sessions, ctx.config, report_id, info.user, secret=ctx.share_secret)
    return RedirectResponse(f"/reports/{report_id}", status_code=303)


@router.post("/reports/{report_id}/unpublish", include_in_schema=False)
def unpublish_form(ctx: Ctx, report_id: RowId, info: Csrf) -> RedirectResponse:
    review.unpublish(ctx.sessions, report_id, info.user)
    return RedirectResponse(f"/reports/{report_id}", status_code=303)


def _revoke(ctx: Ctx, report_id: int | None, info: auth.SessionInfo) -> dict[str, Any]:
    """Admins only: every share link of one report (or, with None, every share link and signed
    evidence URL) made until now stops working; audited on the report, and logged."""
    if info.user.role != "admin":
        raise HTTPException(403, FORBIDDEN)
    with session_scope(ctx.sessions) as s:
        report = None
        if report_id is not None:
            report = s.get(ReportRow, report_id)
            if report is None:
                raise HTTPException(404, NOT_FOUND)
        at = auth.revoke_share_links(s, report_id)
        if report is not None:
            record(s, report, actor=info.user.username, action="revoke_share", note="share links revoked")
    log.warning(
        kv("share_links_revoked", report=report_id if report_id is not None else "all", actor=info.user.username)
    )
    return {"revoked": True, "report": report_id, "revoked_at": at}


@router.post(
    "/api/reports/{report_id}/share/revoke",
    tags=["review"],
    summary="Revoke every share link of one report made until now (admin)",
    response_model=RevokeResult,
)
def api_revoke_share(ctx: Ctx, report_id: RowId, info: Csrf) -> dict[str, Any]:
    return _revoke(ctx, report_id, info)


@router.post(
    "/api/share-links/revoke",
    tags=["review"],
    summary="Revoke every share link and signed evidence URL made until now (admin)",
    response_model=RevokeResult,
)
def api_revoke_all(ctx: Ctx, info: Csrf) -> dict[str, Any]:
    return _revoke(ctx, None, info)


@router.post("/reports/{report_id}/share/revoke", include_in_schema=False)
def revoke_share_form(ctx: Ctx, report_id: RowId, info: Csrf) -> RedirectResponse:
    _revoke(ctx, report_id, info)
    return RedirectResponse(f"/reports/{report_id}", status_code=303)
