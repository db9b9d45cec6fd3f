"""Evidence files by sha256 (upload from the edge: `central.uploads`).

Local files go out as a FileResponse (Starlette answers Range requests itself); objects in an S3
store are streamed from ranged GETs, with the same Range handling a video player relies on
(206 + Content-Range, 416 past the end) and the same headers.
"""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import logging
import re
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from central import auth, queries
from central import evidence as evidence_files
from central.logs import kv
from central.services.access import NOT_FOUND, REVIEWERS
from central.storage import EvidenceStorage, RangeBody, open_evidence_storage
from central.web.deps import Ctx, current

log = logging.getLogger("central.web")

router = APIRouter()


@router.get(
    "/evidence/{sha256}",
    tags=["evidence"],
    summary="An evidence file by its sha256",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}}}, 206: {"description": "the requested range"}},
)
def get_evidence(request: Request, ctx: Ctx, sha256: str, t: str | None = None) -> Response:
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
    storage = open_evidence_storage(ctx.config)
    try:
        with ctx.sessions() as s:
            found = queries.evidence_file(s, storage, sha256)
    except OSError as e:  # an object store that does not answer
        log.error(kv("evidence_store_failing", sha256=sha256, error=type(e).__name__, detail=str(e)[:200]))
        raise HTTPException(503, "evidence store unavailable", headers={"Retry-After": "30"}) from None
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    row, key = found
    if key is None:
        log.warning(kv("evidence_file_missing", sha256=sha256, path=row.path))
        raise HTTPException(404, NOT_FOUND)
    headers = {
        # Content-addressed: the bytes behind this URL can never change. With the signed token
        # the URL itself is the permission, and any cache may keep it; served on the session
        # cookie, only this browser may (a shared proxy would hand it to the next one asking).
        # An hour, not a year: a token expires and can be revoked, and a cache must let it go.
        "Cache-Control": "public, max-age=3600" if by_token else "private, max-age=3600",
        "Vary": "Cookie",
        "ETag": f'"{sha256}"',
    }
    path = storage.local_path(key)
    if path is not None:
        return FileResponse(path, media_type=row.media_type, headers=headers)
    return _streamed(request, storage, key, row.size, row.media_type, headers)


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 256 * 1024


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """One `bytes=` range as (start, end) inclusive; None: send it all; "unsatisfiable": 416.
    Several ranges, or a malformed header, get the whole object (RFC 9110 lets a server ignore Range)."""
    m = _RANGE.fullmatch((header or "").strip())
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # the last N bytes
        n = int(m[2])
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "unsatisfiable"
    start = int(m[1])
    end = min(int(m[2]), size - 1) if m[2] else size - 1
    if m[2] and int(m[2]) < start:
        return None  # an invalid range is ignored, not refused
    if start >= size:
        return "unsatisfiable"
    return start, end


def _streamed(
    request: Request, storage: EvidenceStorage, key: str, size: int, media_type: str, headers: dict[str, str]
) -> Response:
    headers = {**headers, "Accept-Ranges": "bytes"}
    if_range = request.headers.get("if-range")
    wanted = _byte_range(request.headers.get("range"), size) if if_range in (None, headers["ETag"]) else None
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted if isinstance(wanted, tuple) else (0, size - 1)
    try:
        body = storage.open_range(key, start, end if isinstance(wanted, tuple) else None)
    except FileNotFoundError:  # gone between the HEAD and the GET (a purge)
        log.warning(kv("evidence_file_missing", key=key))
        raise HTTPException(404, NOT_FOUND) from None
    except OSError as e:
        log.error(kv("evidence_store_failing", key=key, error=type(e).__name__, detail=str(e)[:200]))
        raise HTTPException(503, "evidence store unavailable", headers={"Retry-After": "30"}) from None
    headers["Content-Length"] = str(end - start + 1)
    status = 200
    if isinstance(wanted, tuple):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(_chunks(body), status_code=status, media_type=media_type, headers=headers)


def _chunks(body: RangeBody) -> Iterator[bytes]:
    # a sync generator: Starlette runs it in a worker thread, so a slow store blocks no other request
    try:
        while chunk := body.read(_CHUNK):
            yield chunk
    finally:
        body.close()
