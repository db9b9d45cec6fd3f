"""`GET /metrics`: Prometheus text format. Never open by default: with `metrics.token` set, only
`Authorization: Bearer <token>`; without it, only loopback clients (a scraper on the same host)."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import hmac
import ipaddress

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from central.web.deps import Ctx

router = APIRouter()


def loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_scraper(request: Request, token: str | None) -> None:
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "metrics: bearer token missing or wrong", headers={"WWW-Authenticate": "Bearer"})
    elif not loopback(request.client.host if request.client else None):
        raise HTTPException(403, "metrics: only loopback clients without metrics.token in the config")


@router.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics (bearer token, or loopback only when none is configured)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
def metrics(request: Request, ctx: Ctx) -> Response:
    check_scraper(request, ctx.config.metrics.token)
    return Response(generate_latest(ctx.metrics), media_type=CONTENT_TYPE_LATEST)
