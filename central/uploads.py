"""Evidence upload over HTTP: `PUT /api/v1/evidence/{sha256}` from the edge nodes.

The edge initiates (nodes behind NAT work), with its own credentials (HTTP Basic: user = node id,
password = the node's token in `uploads.nodes`). The URL names the content: the body is hashed
while it is staged, and it is kept only if its size is the declared Content-Length (and
`X-Evidence-Size`, when sent) and its sha256 is the one in the URL. A refused or broken upload
leaves nothing behind; the edge retries from its outbox.

Idempotent: the key is the sha256, so a repeated upload (a retry after a lost response, or the
same clip shared by two events) is answered 200 and stores nothing new; the first is 201.
`HEAD` tells whether central already has a file, so the edge can skip sending it again.

Limits (issue 18, defect 6): `uploads.max_size_mb` (413), the media types of
`limits.evidence_media_types` (415), and a file no stored event refers to is kept only while the
holding area has room (`central.evidence_hold`; else 507 with Retry-After: the edge tries again,
typically after its event has arrived). A full or unwritable disk is 507 too, never a 500.
"""

# No `from __future__ import annotations`: FastAPI must see the closure's dependency types.
import hashlib
import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from central import evidence as evidence_files
from central import evidence_hold
from central.config import CentralConfig
from central.db import EvidenceRow, dialect_insert, session_scope, utcnow
from central.logs import kv
from central.storage import EvidenceStorage, open_evidence_storage

log = logging.getLogger(__name__)

MEDIA_TYPES = ("image/jpeg", "video/mp4", "image/png")  # the default of limits.evidence_media_types
_RETRY_AFTER_S = "60"
_basic = HTTPBasic(auto_error=False, realm="ioc-evidence")


def upload_router(
    config: CentralConfig,
    sessions: sessionmaker[Session],
    *,
    dialect_name: str,
    storage: EvidenceStorage | None = None,
) -> APIRouter:
    storage = storage or open_evidence_storage(config)
    tokens = {node: token.encode() for node, token in config.uploads.nodes.items()}
    max_bytes = int(config.uploads.max_size_mb * 1024 * 1024)
    insert = dialect_insert(dialect_name)
    limits = evidence_hold.EvidenceLimits.of(config)
    router = APIRouter(prefix="/api/v1/evidence", tags=["evidence upload"])

    def node_of(credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> str:
        expected = tokens.get(credentials.username) if credentials else None
        # compare_digest on a dummy as well: the timing says nothing about which node ids exist.
        given = credentials.password.encode() if credentials else b""
        if not hmac.compare_digest(given, expected or b"\0" * 32) or expected is None:
            raise HTTPException(401, "unknown node or wrong token", headers={"WWW-Authenticate": "Basic"})
        return credentials.username  # type: ignore[union-attr]

    Node = Annotated[str, Depends(node_of)]

    def stored(sha256: str) -> EvidenceRow | None:
        with sessions() as s:
            row = s.get(EvidenceRow, sha256)
        return row if row is not None and storage.exists(sha256, row.size) else None

    def check_sha(sha256: str) -> None:
        if not evidence_files.is_sha256(sha256):
            raise HTTPException(404, "not a sha256")

    @router.head("/{sha256}")
    def head(sha256: str, node: Node) -> Response:
        check_sha(sha256)
        try:
            row = stored(sha256)
        except OSError as e:  # an object store that does not answer: the edge asks again later
            raise _store_failed(node, sha256, e) from None
        if row is None:
            return Response(status_code=404)
        return Response(status_code=200, headers={"X-Evidence-Size": str(row.size)})

    async def put(sha256: str, request: Request, node: Node) -> JSONResponse:
        check_sha(sha256)
        length_header = request.headers.get("content-length")
        if length_header is None or not length_header.isdigit():
            raise HTTPException(411, "Content-Length is required")
        length = int(length_header)
        if length == 0:
            raise HTTPException(422, "empty body")
        if length > max_bytes:
            raise HTTPException(413, f"larger than {config.uploads.max_size_mb:g} MB")
        declared = request.headers.get("x-evidence-size")
        if declared is not None and declared != str(length):
            raise HTTPException(422, f"X-Evidence-Size {declared} != Content-Length {length}")
        media_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if media_type not in limits.media_types:
            raise HTTPException(415, f"media type must be one of {', '.join(limits.media_types)}")
        try:
            known = await run_in_threadpool(stored, sha256)  # with S3, a HEAD request
        except OSError as e:
            raise _store_failed(node, sha256, e) from None
        if known is not None:
            async for _ in request.stream():  # read it anyway: the connection stays usable
                pass
            log.info(kv("evidence_upload_duplicate", node=node, sha256=sha256))
            return JSONResponse({"sha256": sha256, "status": "duplicate"}, status_code=200)
        try:
            with sessions() as s:
                held_until = evidence_hold.admit(s, limits, sha256, length)
        except evidence_hold.EvidenceRefused as e:
            log.warning(kv("evidence_upload_refused", node=node, sha256=sha256, size=length, reason=e.reason))
            raise HTTPException(e.status, e.reason, headers={"Retry-After": _RETRY_AFTER_S}) from None

        try:
            staged = storage.staging_file(sha256)
        except OSError as e:
            raise _store_failed(node, sha256, e) from None
        digest = hashlib.sha256()
        received = 0
        head = b""
        try:
            with open(staged, "wb") as f:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > length:
                        raise HTTPException(422, "body longer than Content-Length")
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    digest.update(chunk)
                    f.write(chunk)
            if received != length:
                raise HTTPException(422, f"got {received} of {length} bytes")
            actual = digest.hexdigest()
            if actual != sha256:
                raise HTTPException(422, f"sha256 mismatch: body hashes to {actual}")
            sniffed = evidence_files.sniff_media_type(head)
            if sniffed != media_type:
                raise HTTPException(422, f"body is {sniffed}, not {media_type}")
            # in a worker thread: with an object store this is a whole upload, and the event
            # loop must keep serving the other nodes meanwhile
            key, _ = await run_in_threadpool(storage.put_verified, sha256, staged)
        except OSError as e:
            staged.unlink(missing_ok=True)
            raise _store_failed(node, sha256, e) from None
        except ClientDisconnect:
            # The link broke mid-upload: nothing is kept, the edge sends the whole file again.
            staged.unlink(missing_ok=True)
            log.warning(kv("evidence_upload_broken", node=node, sha256=sha256, received=received, size=length))
            return JSONResponse({"detail": "client disconnected"}, status_code=400)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        with session_scope(sessions) as s:
            inserted = s.execute(
                insert(EvidenceRow)
                .values(
                    sha256=sha256, media_type=media_type, size=length, path=key, received_at=utcnow(), held_until=held_until
                )
                .on_conflict_do_nothing(index_elements=["sha256"])
                .returning(EvidenceRow.sha256)
            ).first()
        status = "stored" if inserted is not None else "duplicate"
        held = held_until is not None and inserted is not None
        log.info(
            kv("evidence_upload", node=node, sha256=sha256, size=length, media_type=media_type, status=status, held=held)
        )
        return JSONResponse(
            {"sha256": sha256, "status": status, "held": held}, status_code=201 if inserted is not None else 200
        )

    router.add_api_route("/{sha256}", put, methods=["PUT", "POST"], response_model=None)
    return router


def _store_failed(node: str, sha256: str, err: OSError) -> HTTPException:
    """Disk full, read-only, gone: 507 with Retry-After (the edge keeps the file and tries again)."""
    log.error(kv("evidence_store_failing", node=node, sha256=sha256, error=type(err).__name__, detail=str(err)[:200]))
    return HTTPException(507, f"evidence store unwritable: {err.strerror or err}", headers={"Retry-After": _RETRY_AFTER_S})

