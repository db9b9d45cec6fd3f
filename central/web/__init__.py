"""The web console and API: log-in with roles, review queue, reports, exports, health, police view.

Roles: operator (reviews every report), police (traffic reports of their districts once confirmed or
alerted; may resolve them), admin (everything). Server-side sessions + per-session CSRF tokens
(`central.auth`). Evidence is served only by sha256 and only when the evidence table knows it: the
URL never becomes a file path. A sha256 is unguessable, so an evidence URL works like a capability:
it is only learned from a report its holder may read.

Layout: `app.py` (create_app: state, error handlers, include_router), `routers/` (one module per
concern), `deps.py` (session, the one role check, CSRF), `schemas.py` (response models). The
business rules are in `central.services`, the SQL in `central.queries`.
"""

from central.web.app import create_app

__all__ = ["create_app"]
