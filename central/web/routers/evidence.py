"""Evidence files by sha256 (upload from the edge: `central.uploads`)."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from central import auth, queries
from central import evidence as evidence_files
from central.logs import kv
from central.services.access import NOT_FOUND, REVIEWERS
from central.web.deps import Ctx, current

log = logging.getLogger("central.web")

router = APIRouter()


@router.get(
    "/evidence/{sha256}",
    tags=["evidence"],
    summary="An evidence file by its sha256",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}}}},
)
def get_evidence(request: Request, ctx: Ctx, sha256: str, t: str | None = None) -> FileResponse:
    """Served with the signed token that report views carry (`?t=`), or to a logged-in operator
    or admin. A hash alone (it travels in events over MQTT) opens nothing."""
    if not evidence_files.is_sha256(sha256):
        raise HTTPException(404, NOT_FOUND)
    by_token = False
    if t:
        with ctx.sessions() as s:
            revoked = auth.revoked_before(s, None)
        max_age_s = ctx.config.auth.evidence_token_days * 86400
        by_token = auth.check_evidence_token(ctx.share_secret, sha256, t, max_age_s=max_age_s, revoked=revoked)
    if not by_token:
        info = current(request)
        if info is None or info.user.role not in REVIEWERS:
            raise HTTPException(404, NOT_FOUND)
    with ctx.sessions() as s:
        found = queries.evidence_file(s, ctx.config.evidence_dir, sha256)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    row, path = found
    if path is None:
        log.warning(kv("evidence_file_missing", sha256=sha256, path=row.path))
        raise HTTPException(404, NOT_FOUND)
    return FileResponse(
        path,
        media_type=row.media_type,
        headers={
            # Content-addressed: the bytes behind this URL can never change. With the signed token
            # the URL itself is the permission, and any cache may keep it; served on the session
            # cookie, only this browser may (a shared proxy would hand it to the next one asking).
            # An hour, not a year: a token expires and can be revoked, and a cache must let it go.
            "Cache-Control": "public, max-age=3600" if by_token else "private, max-age=3600",
            "Vary": "Cookie",
            "ETag": f'"{sha256}"',
        },
    )
