"""The console app: state, error handling and the routers; no route is written here."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from central import auth
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, session_scope
from central.reports import jinja_env
from central.services import metrics
from central.uploads import upload_router
from central.web.deps import Console, LoginRequired, login_redirect
from central.web.docs import docs_page
from central.web.headers import SecurityHeaders, WorkerHeader, nonce_of
from central.web.routers import auth as auth_routes
from central.web.routers import dashboard, evidence, health, map_view, police, public, reports, review, scenes
from central.web.routers import metrics as metrics_routes
from central.web.schemas import Error
from central.web.throttle import LoginThrottle
from central.workflow import WorkflowError

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Error, "description": text}
    for code, text in ((401, "log in first"), (403, "forbidden"), (404, "not found"), (409, "not now"))
}


STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def favicon() -> FileResponse:
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/vnd.microsoft.icon",
                        headers={"Cache-Control": "public, max-age=86400"})


def create_app(
    config: CentralConfig, *, engine: Engine | None = None, ingester: Any | None = None, event_source: Any | None = None
) -> FastAPI:
    """The console app. `ingester` (optional) adds its counters and MQTT state to /healthz and /metrics;
    `event_source` (a broker cluster's queue or stream consumer) whether it is consuming."""
    engine = engine or make_engine(config.database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        share_secret = auth.share_secret(s, config.auth.share_link_secret)

    app = FastAPI(
        title="IOC central · field reports",
        description="Field reports from the city's cameras: review workflow, exports, police alerts. "
        "JSON endpoints live under /api; state-changing requests need the session cookie and its "
        "CSRF token (header X-CSRF-Token).",
        docs_url=None,  # our own page: a pinned Swagger UI with integrity hashes (central/web/docs.py)
        redoc_url=None,
        openapi_url="/api/openapi.json",
        responses=ERRORS,
    )
    app.add_middleware(SecurityHeaders, map_tile_origin=config.map.tile_origin)
    if config.web.worker_header:
        app.add_middleware(WorkerHeader)
    app.state.engine = engine
    app.state.config = config
    app.state.console = Console(
        config=config,
        engine=engine,
        sessions=sessions,
        env=jinja_env(),
        share_secret=share_secret,
        ingester=ingester,
        event_source=event_source,
        metrics=metrics.registry(sessions, config, ingester, event_source),
        throttle=LoginThrottle(
            sessions,
            account_failures=config.auth.login_account_failures,
            address_failures=config.auth.login_address_failures,
            window_s=config.auth.login_window_s,
            base_delay_s=config.auth.login_base_delay_s,
            max_delay_s=config.auth.login_max_delay_s,
            concurrent_verifications=config.auth.login_concurrent_verifications,
        ),
    )
    app.include_router(upload_router(config, sessions, dialect_name=engine.dialect.name))  # edge evidence upload
    # Order matters where paths overlap: /reports/{ref}.json before /reports/{ref}.
    for router in (
        auth_routes, reports, review, police, health, public, evidence, metrics_routes, scenes, dashboard, map_view
    ):
        app.include_router(router.router)
    # The console's own scripts and the vendored libraries (map, charts, API docs): no CDN.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/api/docs", docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)

    def error(request: Request, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
        if status == 401 and wants_html and request.method == "GET":
            return login_redirect(request)
        if wants_html:
            html = app.state.console.env.get_template("error.html").render(
                user=None,
                csrf="",
                request_path=request.url.path,
                status=status,
                detail=detail,
                csp_nonce=nonce_of(request.state),
            )
            return HTMLResponse(html, status_code=status, headers=headers)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(request, exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> Response:
        return error(request, exc.status, str(exc))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        return login_redirect(request)

    return app
