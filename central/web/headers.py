"""Security headers on every response the app makes (pages, JSON, errors, redirects, evidence).

Scripts run only from this origin or with the response's nonce (`csp_nonce`, given to every
template by `Console.render`): an event text that slipped past escaping could not run script.
Styles may be inline (the templates' `<style>` block and `style=` attributes; a style cannot run
script). Nothing may frame the console (clickjacking on confirm/reject), and no page sends a
Referer (report and evidence links carry signed tokens).
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_KEY = "csp_nonce"

MAP_PATHS = ("/map",)


def content_security_policy(nonce: str, path: str, map_tile_origin: str | None = None) -> str:
    # Every script, the Swagger UI page's and the map's and charts' libraries included, comes from
    # this origin (central/static/vendor) or carries the response's nonce. Only the map page may
    # load images from elsewhere: the configured tile server (`map.tile_url`), if any.
    script = f"script-src 'self' 'nonce-{nonce}'"
    style = "style-src 'self' 'unsafe-inline'"
    img = "img-src 'self' data:"
    if map_tile_origin and path in MAP_PATHS:
        img += f" {map_tile_origin}"
    return "; ".join(
        (
            "default-src 'self'",
            script,
            style,
            img,
            "media-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Pure ASGI middleware (so streamed files and error responses get the headers too)."""

    def __init__(self, app: ASGIApp, map_tile_origin: str | None = None) -> None:
        self.app = app
        self.map_tile_origin = map_tile_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})[NONCE_KEY] = nonce
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = content_security_policy(nonce, path, self.map_tile_origin)
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WorkerHeader:
    """`X-Central-Worker: <host>/<pid>` on every response (`web.worker_header`): behind a proxy
    that spreads requests over several web processes, which one answered."""

    def __init__(self, app: ASGIApp) -> None:
        import os
        import socket

        self.app = app
        self.value = f"{socket.gethostname()}/{os.getpid()}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_worker(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Central-Worker"] = self.value
            await send(message)

        await self.app(scope, receive, send_with_worker)


def nonce_of(state: object) -> str:
    """The nonce the middleware gave this request ("" outside it: a script then does not run)."""
    return str(getattr(state, NONCE_KEY, ""))
