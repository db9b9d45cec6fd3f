"""Nodes and cameras (page and API, from their typed status messages), and the liveness probe."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError

from central import auth
from central.db import check_connection
from central.logs import kv
from central.services.access import REVIEWERS
from central.services.health import configured_health, health_notices
from central.web.deps import Ctx, Reviewer, current, require
from central.web.routers.metrics import loopback
from central.web.schemas import Health, Liveness

router = APIRouter()

ReviewerPage = Annotated[auth.SessionInfo, Depends(require(*REVIEWERS, page=True))]


@router.get(
    "/api/health",
    tags=["health"],
    summary="Nodes (online/offline, outbox backlog) and cameras (analysis fps vs target, lag, last frame, last event)",
    response_model=Health,
)
def api_health(ctx: Ctx, _info: Reviewer) -> dict[str, Any]:
    with ctx.sessions() as s:
        return configured_health(s, ctx.config)


@router.get("/health", response_class=HTMLResponse, include_in_schema=False)
def health_page(request: Request, ctx: Ctx, _info: ReviewerPage) -> Response:
    with ctx.sessions() as s:
        data = configured_health(s, ctx.config)
    return ctx.render(request, "health.html", **data, notices=health_notices(data), tz=ctx.tz)


@router.get(
    "/healthz",
    tags=["health"],
    summary="Liveness: database; MQTT and ingest counters to loopback clients and operators/admins",
    response_model=Liveness,
    response_model_exclude_none=True,
    responses={503: {"model": Liveness, "description": "the database is unreachable"}},
)
def healthz(request: Request, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Status and database for anyone (a load balancer's probe); the MQTT state and the ingest
    counters only to a client on this host or a logged-in operator or admin."""
    body: dict[str, Any] = {"status": "ok"}
    try:
        check_connection(ctx.engine)
        body["database"] = "ok"
    except SQLAlchemyError as e:
        # Only "failing" to the caller (anyone may ask): the driver's error names the backend and
        # what broke; it goes to the log.
        logging.getLogger("central.web").warning(kv("healthz_database_failing", error=type(e).__name__))
        body.update(status="error", database="failing")
    if ctx.ingester is not None and _sees_ingest(request, database_up=body["status"] == "ok"):
        body["mqtt"] = "connected" if ctx.ingester.connected.is_set() else "disconnected"
        body["ingester"] = ctx.ingester.counters.snapshot()
        src = ctx.event_source
        if src is not None:
            # Events come from the cluster's queue, not MQTT: "mqtt: connected" alone says nothing of them.
            body["event_source"] = {"engine": src.engine_name, "consuming": bool(src.consuming())}
    response.status_code = 200 if body["status"] == "ok" else 503
    return body


def _sees_ingest(request: Request, *, database_up: bool) -> bool:
    if loopback(request.client.host if request.client else None):
        return True
    if not database_up or auth.SESSION_COOKIE not in request.cookies:
        return False  # the probe answers without a session lookup where it can
    try:
        info = current(request)
    except SQLAlchemyError:
        return False
    return info is not None and info.user.role in REVIEWERS
