"""Log in, log out, who is logged in."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import logging
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from central import auth
from central.db import session_scope
from central.logs import kv
from central.web.deps import Csrf, Ctx, User, current, safe_next
from central.web.schemas import Me

log = logging.getLogger("central.web")

LOGIN_CSRF_COOKIE = "ioc_login_csrf"

router = APIRouter()


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, ctx: Ctx, next: str = "/queue", error: str | None = None) -> HTMLResponse:  # noqa: A002
    token = secrets.token_urlsafe(24)
    resp = ctx.render(request, "login.html", next=safe_next(next), error=error, login_csrf=token)
    # Double-submit token: a foreign site cannot log the browser in to an account of its choosing.
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=ctx.config.auth.cookie_secure)
    return resp


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """The address the login throttle counts: the peer's, or — when the peer is a trusted reverse
    proxy (`web.trusted_proxies`) — the nearest X-Forwarded-For entry that is not a trusted proxy
    (entries further left are whatever the client wrote, so they are not believed). From anyone
    else the header is ignored: a forged one must not escape the per-address limit."""
    import ipaddress

    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies:
        return peer
    networks = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]

    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in n for n in networks)

    if not trusted(peer):
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: count it against the proxy, not a made-up key
    return peer


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/queue",  # noqa: A002
) -> Response:
    if not auth.csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        raise HTTPException(403, "CSRF token missing or wrong")
    address = client_address(request, ctx.config.web.trusted_proxies)
    throttle = ctx.throttle
    # Refused before the database and argon2 are reached: a flood costs no hashing.
    wait = throttle.retry_after(username, address)
    if wait:
        log.warning(kv("login_throttled", username=username, address=address, retry_after_s=wait))
        raise HTTPException(
            429,
            f"quá nhiều lần đăng nhập sai / too many failed logins: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if not throttle.verifications.acquire(blocking=False):
        log.warning(kv("login_busy", username=username, address=address))
        raise HTTPException(503, "máy chủ bận / too many logins at once: try again", headers={"Retry-After": "1"})
    try:
        with session_scope(ctx.sessions) as s:
            user = auth.authenticate(s, username, password)
            if user is None:
                throttle.failed(username, address)
                log.warning(kv("login_failed", username=username, address=address))
                return RedirectResponse(f"/login?error=1&next={quote(safe_next(next))}", status_code=303)
            token, _csrf = auth.start_session(s, user, ctx.config.auth.session_hours)
    finally:
        throttle.verifications.release()
    throttle.succeeded(username)
    log.info(kv("login", username=user.username, role=user.role, address=address))
    target = safe_next(next)
    if user.role == "police" and target in ("/queue", "/"):
        target = "/police"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=int(ctx.config.auth.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=ctx.config.auth.cookie_secure,
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


@router.post("/logout", include_in_schema=False)
def logout(request: Request, ctx: Ctx, _info: Csrf) -> Response:
    with session_scope(ctx.sessions) as s:
        auth.end_session(s, request.cookies.get(auth.SESSION_COOKIE))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(auth.SESSION_COOKIE)
    return resp


@router.get("/", include_in_schema=False)
def index(request: Request) -> RedirectResponse:
    info = current(request)
    if info is None:
        return RedirectResponse("/reports", status_code=307)
    return RedirectResponse("/police" if info.user.role == "police" else "/queue", status_code=307)


@router.get("/api/me", tags=["session"], summary="Who is logged in, and the CSRF token to send back", response_model=Me)
def api_me(info: User) -> Me:
    u = info.user
    return Me(
        username=u.username,
        role=u.role,
        districts=list(u.districts),
        wards=list(u.wards),
        areas=list(u.areas),
        csrf=info.csrf,
    )
