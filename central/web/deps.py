"""What the routers share: the console's state, the session, the one role check, CSRF, pages."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from central import auth
from central.config import CentralConfig
from central.db import session_scope
from central.queries import ReportFilter
from central.services.access import FORBIDDEN, REVIEWERS
from central.web.headers import nonce_of
from central.web.throttle import LoginThrottle

LOGIN_FIRST = "đăng nhập trước / log in first"
NOTICES_TTL_S = 10.0


@dataclass
class Console:
    """The app's state, made once by `create_app` (routers get it with `Depends(console)`)."""

    config: CentralConfig
    engine: Engine
    sessions: sessionmaker[Session]
    env: jinja2.Environment
    share_secret: bytes
    metrics: CollectorRegistry
    throttle: LoginThrottle
    ingester: Any | None = None
    event_source: Any | None = None  # RabbitMqEventSource / JetStreamIngester: engine_name, consuming()
    # (monotonic time, notices): the health banner on operator pages, recomputed at most every
    # NOTICES_TTL_S so a busy console does not read the health tables on every page.
    _notices: tuple[float, list[dict[str, Any]]] = (float("-inf"), [])

    def health_notices(self) -> list[dict[str, Any]]:
        from central.services.health import configured_health, health_notices

        at, notices = self._notices
        if time.monotonic() - at > NOTICES_TTL_S:
            with self.sessions() as s:
                notices = health_notices(configured_health(s, self.config))
            self._notices = (time.monotonic(), notices)
        return notices

    @property
    def tz(self) -> str:
        return self.config.time_zone

    @property
    def public_base(self) -> str:
        return self.config.web.base_url

    def render(self, request: Request, name: str, **ctx: Any) -> HTMLResponse:
        info = current(request)
        reviewer = info is not None and info.user.role in REVIEWERS
        html = self.env.get_template(name).render(
            health_banner=self.health_notices() if reviewer else [],
            user=info.user if info else None,
            csrf=info.csrf if info else "",
            request_path=request.url.path,
            csp_nonce=nonce_of(request.state),
            **ctx,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def console(request: Request) -> Console:
    return request.app.state.console


Ctx = Annotated[Console, Depends(console)]


class LoginRequired(Exception):
    """A page asked for without a session: the app answers with a redirect to /login."""


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only same-site paths: `next=https://evil.example` must not turn the login into a redirector."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


# -------------------------------------------------------------------------------- sessions


def current(request: Request) -> auth.SessionInfo | None:
    """The logged-in session of this request, if any (read once per request)."""
    if not hasattr(request.state, "session_info"):
        with session_scope(console(request).sessions) as s:
            request.state.session_info = auth.load_session(s, request.cookies.get(auth.SESSION_COOKIE))
    return request.state.session_info


def require(*roles: str, page: bool = False) -> Any:
    """The one role check: a dependency giving the session of a user with one of `roles` (any
    role when none are named). Without a session: 401 (an API) or a redirect to /login (a page,
    `page=True`); with another role: 403."""

    def dependency(request: Request) -> auth.SessionInfo:
        info = current(request)
        if info is None:
            if page:
                raise LoginRequired()
            raise HTTPException(401, LOGIN_FIRST)
        if roles and info.user.role not in roles:
            raise HTTPException(403, FORBIDDEN)
        return info

    return dependency


User = Annotated[auth.SessionInfo, Depends(require())]
Reviewer = Annotated[auth.SessionInfo, Depends(require("operator", "admin"))]


async def check_csrf(request: Request, info: User) -> auth.SessionInfo:
    """A state-changing request: logged in, and the session's CSRF token sent back (header or form field)."""
    given = request.headers.get(auth.CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get(auth.CSRF_FIELD) or "")
    if not auth.csrf_ok(info.csrf, given):
        raise HTTPException(403, "CSRF token missing or wrong")
    return info


Csrf = Annotated[auth.SessionInfo, Depends(check_csrf)]


# --------------------------------------------------------------------------------- filters


def report_filter(
    request: Request,
    camera: str | None = Query(None, max_length=64),
    type: str | None = Query(None, max_length=64),  # noqa: A002 - the public parameter name
    ward: str | None = Query(None, max_length=200),
    area: str | None = Query(None, max_length=64, description="a routing area's code, e.g. hue-trung-tam"),
    district: str | None = Query(None, max_length=200, description="legacy label"),
    status: str | None = Query(None, max_length=16),
    since: str | None = Query(None, description="ISO 8601, e.g. 2026-11-21T07:00:00+07:00"),
    until: str | None = Query(None, description="ISO 8601"),
    overdue: bool = Query(False),
    plate: str | None = Query(None, max_length=32, description="full or partial plate, e.g. 29b1 12345"),
    q: str | None = Query(None, max_length=200, description="free text, accents and case ignored, e.g. cau giay"),
) -> ReportFilter:
    def when(value: str | None, name: str) -> datetime | None:
        if not value:
            return None
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise HTTPException(422, f"{name}: not an ISO 8601 time") from None
        # A time typed without a zone (the page's date-time fields) is the console's local time,
        # as the page shows every time; it stays in that zone so the field shows it back as typed.
        return ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo(request.app.state.config.time_zone))

    return ReportFilter(
        camera=camera or None,
        type=type or None,
        ward=ward or None,
        area=area or None,
        district=district or None,
        status=status or None,
        since=when(since, "since"),
        until=when(until, "until"),
        overdue=overdue,
        plate=plate or None,
        q=q or None,
    )


Filter = Annotated[ReportFilter, Depends(report_filter)]
